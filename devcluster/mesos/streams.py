"""Server side of a Mesos event stream: one chunked HTTP response carrying RecordIO.

The master uses one per subscribed scheduler and each agent one per subscribed
executor. Events are queued by the (synchronous) master/agent logic and written
by the request handler's coroutine, so the logic never awaits the network.
"""

from __future__ import annotations

import asyncio
import uuid

from aiohttp import web

from devcluster.mesos.protocol import JSON
from devcluster.mesos.wire import APPLICATION_JSON, encode_record

_END = b""
# How long a stopping server waits for requests in flight before it cancels them.
# The emulator's servers stop as crashed processes do; event streams are aborted
# before, so only a client in the middle of sending a request is cut off.
SHUTDOWN_TIMEOUT = 0.5


class EventStream:
    def __init__(self, with_stream_id: bool, chunk_size: int = 0) -> None:
        self.stream_id = str(uuid.uuid4()) if with_stream_id else ""
        # When set, queued records are coalesced and re-cut into chunks of this
        # many bytes, so clients see records split across chunk boundaries.
        self._chunk_size = chunk_size
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._request: web.BaseRequest | None = None
        self.closed = False

    def send(self, event: JSON) -> None:
        if not self.closed:
            self._queue.put_nowait(encode_record(event))

    def close(self) -> None:
        """Flush queued events, then end the chunked body cleanly."""
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(_END)

    def abort(self) -> None:
        """Drop the connection at once, as a crashed server would."""
        self.closed = True
        if self._request is not None and self._request.transport is not None:
            self._request.transport.abort()
        self._queue.put_nowait(_END)

    async def serve(self, request: web.BaseRequest) -> web.StreamResponse:
        """Write the response until the stream is closed or the client goes away."""
        self._request = request
        headers = {"Content-Type": APPLICATION_JSON}
        if self.stream_id:
            headers["Mesos-Stream-Id"] = self.stream_id
        response = web.StreamResponse(status=200, headers=headers)
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            ended = False
            while not ended:
                record = await self._queue.get()
                if record == _END:
                    break
                if not self._chunk_size:
                    await response.write(record)
                    continue
                pending = [record]
                while not self._queue.empty():
                    more = self._queue.get_nowait()
                    if more == _END:
                        ended = True
                        break
                    pending.append(more)
                data = b"".join(pending)
                for start in range(0, len(data), self._chunk_size):
                    await response.write(data[start : start + self._chunk_size])
            if request.transport is not None and not request.transport.is_closing():
                await response.write_eof()
        except (ConnectionError, asyncio.CancelledError, RuntimeError):
            pass
        finally:
            self.closed = True
        return response
