"""A real MQTT broker for the tests: Debian's mosquitto, started on free ports, stopped after the test.

Two listeners: plain MQTT, and MQTT over WebSocket behind TLS with a certificate made here (a test CA that signs a
`localhost` server certificate), which is the transport `watch` uses against AWS IoT Core. Missing mosquitto is
installed with apt-get when running as root; under CI=true a broker that still cannot start is a failure.
"""

from __future__ import annotations

import datetime as dt
import getpass
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class RunningBroker:
    mqtt_port: int
    wss_port: int
    ca_file: str
    log: Path

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "mosquitto"], env=env, capture_output=True, timeout=600)
        found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if found is None:
        message = "mosquitto is not installed and could not be installed (apt-get install mosquitto)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _write_certificates(folder: Path) -> tuple[Path, Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "deeplens-cli test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
              .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                          x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
              .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


def start_broker(folder: Path) -> tuple[subprocess.Popen, RunningBroker]:
    binary = mosquitto_binary()
    ca, cert, key = _write_certificates(folder)
    mqtt_port, wss_port = _free_port(), _free_port()
    config = folder / "mosquitto.conf"
    config.write_text("\n".join([
        # As root mosquitto would switch to its own user, which cannot read this test's private key.
        f"user {getpass.getuser()}",
        "allow_anonymous true", "persistence false", "log_dest stderr", "log_type all",
        f"listener {mqtt_port} 127.0.0.1",
        f"listener {wss_port} 127.0.0.1", "protocol websockets",
        f"cafile {ca}", f"certfile {cert}", f"keyfile {key}", ""]))
    log = folder / "mosquitto.log"
    process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=log.open("wb"))
    deadline = time.monotonic() + 60  # guards a hang: mosquitto opens its ports in milliseconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {log.read_text(errors='replace')}")
        try:
            for port in (mqtt_port, wss_port):
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, RunningBroker(mqtt_port, wss_port, str(ca), log)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("mosquitto did not open its ports within 60 s")
