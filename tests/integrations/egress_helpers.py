"""A resolver that rebinds: the DNS-rebinding attack, simulated without any traffic leaving 127.0.0.1."""

import ipaddress
import socket


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def rebinding_resolver(monkeypatch, name: str, first: list[str]) -> tuple[list[str], list[tuple[str, int]]]:
    """Makes ``name`` resolve to the ``first`` addresses on its first look-up and to 127.0.0.1 on every later one
    (other names resolve normally). Returns the log of look-ups of ``name`` and the log of what each
    ``socket.create_connection`` was asked to connect to (a name, or an IP address).

    ``socket.create_connection`` is replaced too: given a name it resolves it (through the rebinding resolver, as the
    real one would), and it only really connects to 127.0.0.1; any other address is refused (ConnectionRefusedError)
    so no test traffic leaves the machine. A client that checked one answer and then connected by name would land on
    127.0.0.1 here, as it would in the attack.
    """
    real_getaddrinfo = socket.getaddrinfo
    real_create_connection = socket.create_connection
    lookups: list[str] = []
    connections: list[tuple[str, int]] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != name:
            return real_getaddrinfo(host, port, *args, **kwargs)
        addresses = first if not lookups else ["127.0.0.1"]
        lookups.append(host)
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [
            (family[6 if ":" in address else 4], socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses
        ]

    def create_connection(address, *args, **kwargs):
        host, port = address[0], address[1]
        connections.append((host, port))
        if not _is_ip(host):
            host = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
        if host != "127.0.0.1":
            raise ConnectionRefusedError(f"(test) no connection leaves 127.0.0.1, not to {host}")
        return real_create_connection((host, port), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return lookups, connections
