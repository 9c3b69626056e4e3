#!/usr/bin/env python3
"""Seed corpus capture: a TCP proxy in front of a broker that writes every byte each client
sends into OUT_DIR/<prefix>-<n>.bin (one file per connection, capped at 64 KiB).

    python3 fuzz/capture.py LISTEN_PORT BROKER_PORT OUT_DIR PREFIX

Point a client suite at LISTEN_PORT (e.g. AMQP_URL=amqp://guest:guest@127.0.0.1:LISTEN_PORT/%2f
for interop/python, WARREN_TEST_URL=... for a lapin test file), then stop the proxy with
Ctrl-C. The captures seed `cargo fuzz run frame_decoder` and `assembler`."""

import asyncio
import itertools
import sys
from pathlib import Path

CAP = 64 * 1024


async def pipe(reader, writer, record=None):
    try:
        while data := await reader.read(65536):
            if record is not None and len(record) < CAP:
                record.extend(data[: CAP - len(record)])
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main(listen, broker, out, prefix):
    out.mkdir(parents=True, exist_ok=True)
    counter = itertools.count()

    async def handle(creader, cwriter):
        n = next(counter)
        record = bytearray()
        try:
            breader, bwriter = await asyncio.open_connection("127.0.0.1", broker)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(pipe(creader, bwriter, record), pipe(breader, cwriter))
        if record:
            (out / f"{prefix}-{n:04}.bin").write_bytes(bytes(record))

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    listen, broker, out, prefix = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    try:
        asyncio.run(main(listen, broker, out, prefix))
    except KeyboardInterrupt:
        pass
