// Time-series charts drawn with uPlot (a small canvas chart library, bundled).

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h } from "./dom";

export interface Line {
  label: string;
  color: string;
  values: number[];
}

const UTC = (seconds: number) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC");
const COUNTS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000];

/** A chart of `lines` over `times` (seconds since the epoch, shown in UTC) from `from`
 * to the last time, as wide as the page; `unit` names what is counted. */
export function chart(
  name: string,
  title: string,
  unit: string,
  from: number,
  times: number[],
  lines: Line[],
): HTMLElement {
  const holder = h("div", { class: "chart", "data-chart": name });
  const width = Math.max(320, (document.getElementById("page")?.clientWidth ?? 800) - 32);
  new uPlot(
    {
      title,
      width,
      height: 220,
      tzDate: UTC,
      scales: {
        x: { time: true, range: (): uPlot.Range.MinMax => [from, times[times.length - 1]] },
        y: { range: (_u, _min, max) => [0, Math.max(1, max)] },
      },
      axes: [{}, { label: unit, incrs: COUNTS }],
      series: [
        {},
        ...lines.map((line) => ({
          label: line.label,
          stroke: line.color,
          fill: `${line.color}22`,
          width: 2,
          points: { show: times.length < 100 },
        })),
      ],
    },
    [times, ...lines.map((line) => line.values)],
    holder,
  );
  return holder;
}
