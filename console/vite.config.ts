// The console is built into the controller's package, which serves it at /console/.
// Relative asset paths keep it working behind a proxy that adds a path prefix.
import { defineConfig } from "vite";

export default defineConfig({
  base: "./",
  build: {
    outDir: "../controller/api/static",
    emptyOutDir: true,
    // No source maps or inlined fonts: the console ships a few small files only.
    sourcemap: false,
    chunkSizeWarningLimit: 200,
  },
});
