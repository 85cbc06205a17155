"""Entry point of a LavaSession's child interpreter: ``python -m eqprop.neuromorphic.session_main ADDRESS KEY ...``."""
import os
import signal
import sys
import threading
from multiprocessing.connection import Client

from eqprop.neuromorphic.session import _serve


def _watch_parent(parent: int) -> None:
    import time
    while os.getppid() == parent:
        time.sleep(0.5)
    os.killpg(os.getpgid(0), signal.SIGKILL)  # the caller is gone: take Lava's processes down with us


if __name__ == "__main__":  # Lava imports every module here when it looks for models: run nothing then
    address, key_hex, alpha_text, threshold_text, parent_pid = sys.argv[1:6]
    threading.Thread(target=_watch_parent, args=(int(parent_pid),), daemon=True).start()
    _serve(Client(address, authkey=bytes.fromhex(key_hex)), float(alpha_text), float(threshold_text))
