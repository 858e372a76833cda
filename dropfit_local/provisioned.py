"""A runtime initialised before its first invocation, as Lambda's provisioned concurrency does.

Lambda runs a provisioned environment's INIT phase (the runtime starts, the handler's module is
imported) before any request arrives; on-demand environments pay it on their first invocation.
The emulator (``aws-lambda-rie``) only starts its runtime on the first invocation, so the local
stack starts each runtime's INIT itself, next to the emulator:

* ``serve`` (started with the emulator, with the function's environment): imports the handler's
  module, tells the stack it is ready (a byte on a pipe), then waits on a Unix socket the stack
  created for it;
* ``attach`` (what the emulator's ``bootstrap`` runs at the first invocation): hands its
  environment (``AWS_LAMBDA_RUNTIME_API`` ...) to the waiting runtime, which then runs
  ``awslambdaric`` against the emulator exactly as ``python -m awslambdaric`` would, and stays
  alive as long as it does (each ends when the other does).

Once attached the socket is removed: a runtime the emulator restarts (after a crash or a
timeout) starts on demand, as on Lambda. Run by path with ``python -P`` (the runtime's
``sys.path`` is the function's ``PYTHONPATH``, not this folder); standard library and
awslambdaric only.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import socket
import sys
import threading

SOCKET_VARIABLE = "DROPFIT_LOCAL_PROVISIONED"
LISTENER_FD_VARIABLE = "DROPFIT_LOCAL_PROVISIONED_FD"
READY_FD_VARIABLE = "DROPFIT_LOCAL_PROVISIONED_READY_FD"


def handler_name() -> str:
    """The entry point the bootstrap would run (fault injection's wrapper when it is on)."""
    return os.environ.get("DROPFIT_LOCAL_HANDLER") or os.environ["_HANDLER"]


def serve() -> None:
    """INIT now; on the first invocation, become the runtime the emulator started."""
    listener = socket.socket(fileno=int(os.environ.pop(LISTENER_FD_VARIABLE)))
    ready = int(os.environ.pop(READY_FD_VARIABLE))
    handler = handler_name()
    # The INIT phase: import the handler's module. An import that fails is left to awslambdaric,
    # which imports it again below and reports the init error to the emulator as Lambda does.
    with contextlib.suppress(Exception):
        importlib.import_module(handler.rsplit(".", 1)[0].replace("/", "."))
    os.write(ready, b"1")  # the stack counts this runtime as started (its INIT is done)
    os.close(ready)
    connection, _ = listener.accept()
    with contextlib.suppress(OSError):
        os.unlink(os.environ[SOCKET_VARIABLE])
    listener.close()
    environment = json.loads(_read_line(connection))
    os.environ.clear()
    os.environ.update(environment)
    # The emulator watches the bootstrap process: when it goes (killed after a timeout, or on
    # shutdown), so does this runtime, before it could take another invocation.
    threading.Thread(target=_exit_with, args=(connection,), daemon=True).start()
    from awslambdaric.__main__ import main

    main([sys.argv[0], handler])


def attach() -> int:
    """The bootstrap's side: hand over the environment, then live as long as the runtime."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(os.environ[SOCKET_VARIABLE])
    except OSError:  # no runtime waits (it was used, or it died): start one on demand
        os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"] = "on-demand"
        os.environ.pop(SOCKET_VARIABLE)
        os.execv(sys.executable, [sys.executable, "-m", "awslambdaric", handler_name()])
    connection.sendall(json.dumps(dict(os.environ)).encode() + b"\n")
    while connection.recv(4096):
        pass
    return 1  # the runtime ended: the emulator sees its bootstrap exit, as with a crash


def _read_line(connection: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(65536)
        if not chunk:
            raise SystemExit("the bootstrap went away before handing over its environment")
        data += chunk
    return data


def _exit_with(connection: socket.socket) -> None:
    while connection.recv(4096):
        pass
    os._exit(1)


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve()
    elif sys.argv[1:] == ["attach"]:
        sys.exit(attach())
    else:
        sys.exit(f"usage: {sys.argv[0]} serve|attach")
