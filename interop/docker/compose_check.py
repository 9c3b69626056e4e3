"""Run docker/docker-compose.yml's two services the way the containers would, on this machine.

The broker service: docker/docker-entrypoint.sh with the service's environment, the image's
ENV (HOME, RABBITMQ_MNESIA_BASE), its conf.d, the mounted rabbitmq.conf and the tools on PATH
under RabbitMQ's names. The compose healthcheck must pass. The app service: app.py with its
AMQP_URL (the service name replaced by 127.0.0.1 and free ports), unchanged. Exit 0 when the
app's ten confirmed orders are all consumed and the broker stops cleanly on SIGTERM.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import yaml

warren, root = os.path.abspath(sys.argv[1]), sys.argv[2]
docker = os.path.join(root, "docker")
compose = yaml.safe_load(open(os.path.join(docker, "docker-compose.yml")))
broker_svc, app_svc = compose["services"]["rabbitmq"], compose["services"]["orders"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAIL: {what}")
    print(f"ok: {what}", flush=True)


tmp = tempfile.mkdtemp(prefix="warren-compose-")
os.chmod(tmp, 0o777)
bin_dir = os.path.join(tmp, "bin")
os.mkdir(bin_dir)
for name in ["warren", "rabbitmq-server", "rabbitmqctl", "rabbitmq-diagnostics", "rabbitmq-plugins"]:
    os.symlink(warren, os.path.join(bin_dir, name))
etc = os.path.join(tmp, "etc")
os.mkdir(etc)
os.chmod(etc, 0o755)

# The volume that mounts the example's rabbitmq.conf, plus free ports for this machine.
mount = next(v for v in broker_svc["volumes"] if v.split(":")[1] == "/etc/rabbitmq/rabbitmq.conf")
amqp, mgmt, metrics, dist = free_port(), free_port(), free_port(), free_port()
conf = os.path.join(etc, "rabbitmq.conf")
with open(conf, "w") as f:
    f.write(open(os.path.join(docker, mount.split(":")[0])).read())
    f.write(f"listeners.tcp.default = {amqp}\nmanagement.tcp.port = {mgmt}\nprometheus.tcp.port = {metrics}\n")
os.chmod(conf, 0o644)

home = os.path.join(tmp, "var/lib/rabbitmq")
env = {
    "PATH": f"{bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    # The image's ENV.
    "HOME": home,
    "RABBITMQ_DATA_DIR": home,
    "RABBITMQ_MNESIA_BASE": os.path.join(home, "mnesia"),
    # Where the image keeps its files.
    "RABBITMQ_CONFIG_FILE": conf,
    "RABBITMQ_CONFIG_FILES": os.path.join(docker, "conf.d"),
    "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(etc, "enabled_plugins"),
    # The container's hostname names the node; the CLI port is free on this machine.
    "RABBITMQ_NODENAME": f"rabbit@{broker_svc['hostname']}",
    "RABBITMQ_DIST_PORT": str(dist),
}
env.update({k: str(v) for k, v in broker_svc["environment"].items()})

broker = subprocess.Popen(
    ["bash", os.path.join(docker, "docker-entrypoint.sh"), "rabbitmq-server"],
    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
)
log = []
ready = threading.Event()


def read_log():
    for line in broker.stdout:
        log.append(line)
        if "Server startup complete" in line:
            ready.set()


threading.Thread(target=read_log, daemon=True).start()
passed = False
try:
    check(ready.wait(30), "the broker logs 'Server startup complete'")

    # The compose healthcheck, as Docker runs it: CMD with the container's environment.
    test = broker_svc["healthcheck"]["test"]
    check(test[0] == "CMD", "the healthcheck is a CMD")
    hc = subprocess.run(test[1:], env=env, capture_output=True, text=True, timeout=30)
    check(hc.returncode == 0 and hc.stdout == "Ping succeeded\n",
          f"healthcheck {' '.join(test[1:])} -> {hc.returncode} {hc.stdout!r} {hc.stderr!r}")

    # The app, unchanged, with its AMQP_URL pointing at this broker.
    url = app_svc["environment"]["AMQP_URL"].replace("@rabbitmq:5672/", f"@127.0.0.1:{amqp}/")
    app = subprocess.Popen(
        [sys.executable, os.path.join(docker, "example-app", "app.py")],
        env={**os.environ, "AMQP_URL": url}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    seen = []
    deadline = time.time() + 30

    def read_app():
        for line in app.stdout:
            seen.append(line.rstrip("\n"))

    threading.Thread(target=read_app, daemon=True).start()
    while time.time() < deadline and sum("stock reserved" in l for l in seen) < 10:
        time.sleep(0.1)
    app.terminate()
    app.wait(10)
    check("published 10 confirmed orders" in seen, f"the app published with confirms: {seen[:3]}")
    orders = sorted(int(re.search(r"'order': (\d+)", l).group(1)) for l in seen if "stock reserved" in l)
    check(orders == list(range(10)), f"the app consumed every order: {orders}")

    # What the app left, seen with the tools (acked: nothing ready).
    vhost = broker_svc["environment"]["RABBITMQ_DEFAULT_VHOST"]
    deadline = time.time() + 10
    while True:
        out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "messages"],
                             env=env, capture_output=True, text=True, timeout=30).stdout
        if out == "name\tmessages\nstock\t0\n" or time.time() > deadline:
            break
        time.sleep(0.1)
    check(out == "name\tmessages\nstock\t0\n", f"rabbitmqctl list_queues -p {vhost}: {out!r}")

    broker.send_signal(signal.SIGTERM)
    check(broker.wait(30) == 0, "the broker stops cleanly on SIGTERM (docker stop)")
    passed = True
finally:
    if broker.poll() is None:
        broker.kill()
    if not passed:
        print("broker log:\n" + "".join(log[-40:]))
    shutil.rmtree(tmp, ignore_errors=True)
