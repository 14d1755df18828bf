"""Flower's SuperNode in a process that ends when its main function does.

``flower-supernode`` 1.42 serves its ClientApps from a uvicorn thread that is not a
daemon, and stops that thread only on its own exit path. When its main function raises
instead (``flower-superexec`` not on PATH, which it starts by name, was one cause), the
thread keeps the process alive for good, and ``join``, which waits for the SuperNode's
exit, waits with it. Here the process ends with the function, whatever way it ends.

Run as ``python -m client.federation.supernode_process ARGS``: ``ARGS`` are
``flower-supernode``'s own.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import traceback


def main() -> None:
    # flower-supernode starts `flower-superexec` from PATH: the one of this environment,
    # also when join was started by its full path from a shell without it on PATH.
    scripts = [sysconfig.get_path("scripts"), os.path.dirname(sys.executable)]
    os.environ["PATH"] = os.pathsep.join([*scripts, os.environ.get("PATH", os.defpath)])
    sys.argv[0] = "flower-supernode"
    code = 1
    try:
        from flwr.supernode.cli.flower_supernode import flower_supernode

        flower_supernode()
        code = 0
    except SystemExit as stop:  # Flower's own exits, e.g. a refused key (code 305)
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
        code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    except KeyboardInterrupt:
        code = 130
    except BaseException as error:  # noqa: BLE001 - whatever it was, the process must end
        if os.environ.get("FEDLIFE_DEBUG"):
            traceback.print_exc()
        print(f"error: the SuperNode stopped: {type(error).__name__}: {error}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
