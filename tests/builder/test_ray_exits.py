"""`build --ray`: a malformed address is bad input, an unreachable one fails within the connect timeout, and the Ray
processes a driver started do not outlive it when it is killed."""
import socket
import subprocess
import sys
import threading
import time

import pytest

from neuron_atlas.errors import AtlasError, InvalidParameterError

ray = pytest.importorskip("ray")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("address", ["garbage", "garbage address", "host:", ":6379", "host:99999", "http://x:1", ""])
def test_malformed_addresses_are_bad_input(address):
    from neuron_atlas.builder.ray_address import parse

    with pytest.raises(InvalidParameterError, match="is not a Ray address"):
        parse(address)
    assert parse("auto") is None and parse("ray://head-1.example:10001") == ("head-1.example", 10001)
    assert parse("10.0.0.5:6379") == ("10.0.0.5", 6379) and parse("[::1]:6379") == ("::1", 6379)


def test_an_unreachable_address_fails_within_the_connect_timeout():
    from neuron_atlas.builder.distributed import count_on_ray

    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    address, outcome = f"127.0.0.1:{_closed_port()}", {}

    def connect():
        try:
            count_on_ray([("m", "tgl_Latn")], {"m": ("m", None)}, None, None, dtype="float32", device="cpu",
                         address=address, workers=1, accept=print, note=print)
        except AtlasError as exc:
            outcome["error"] = exc

    start = time.monotonic()
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "still connecting after 30 s"
    assert "cannot connect to the Ray cluster" in str(outcome.get("error")) and time.monotonic() - start < 15
    assert not ray.is_initialized()


def test_ray_processes_of_a_killed_driver_are_stopped():
    """A driver that starts a local cluster and is SIGKILLed: its watcher kills Ray's agents, which Ray leaves."""
    code = ("import ray, psutil\nfrom neuron_atlas.builder.ray_janitor import watch_ray_processes\n"
            "ray.init(num_cpus=1, include_dashboard=False)\nwatch_ray_processes()\n"
            "kids = [p.pid for p in psutil.Process().children(recursive=True) if 'ray' in ' '.join(p.cmdline()).lower()]\n"
            "print(' '.join(map(str, kids)), flush=True)\nimport time\ntime.sleep(300)\n")
    psutil = pytest.importorskip("psutil")
    driver = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        pids = [int(p) for p in driver.stdout.readline().split()]
    finally:
        driver.kill()
        driver.wait(timeout=30)
    assert pids, "the driver started no Ray process"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            break
        time.sleep(0.5)
    assert not alive, [psutil.Process(p).name() for p in alive]
