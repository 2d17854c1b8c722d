"""Taking back everything the real node put on the host, safe on a half-started node and more
than once: pods' processes, mounts, the bridge and its veths, iptables rules and ipsets,
kubepods cgroups and the kernel settings; and `leftovers`, what a stopped node must not leave."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from citykit import toolchain
from citykit.cluster.node_host import BRIDGE
from citykit.cluster.node_host import CGROUP_ROOT
from citykit.cluster.node_host import KUBEPODS
from citykit.cluster.node_host import RULE_PREFIX
from citykit.cluster.node_host import UNREACHABLE
from citykit.cluster.node_host import restore_sysctls
from citykit.cluster.node_host import run
from citykit.errors import ToolMissing

if TYPE_CHECKING:
    from citykit.cluster.realnode import RealNode


def stop(node: RealNode, saved_sysctls: dict[str, str]) -> None:
    """Take back everything the node put on the host. Safe to call on a half-started node
    and more than once."""
    _kill_pods(node)
    _unmount_all(node)
    _clean_network()
    _remove_cgroups()
    restore_sysctls(saved_sysctls)
    for directory in (node.run_dir, node.kubelet_dir):
        shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            directory.parent.rmdir()  # only when no other cluster's node uses it


def _kill_pods(node: RealNode) -> None:
    """Every process in the kubepods cgroups (containers and sandboxes), and every shim of
    this node's containerd."""
    for _ in range(3):
        pids = _cgroup_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if not pids:
            break
        time.sleep(0.5)
    marker = str(node.containerd_socket).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)


def _unmount_all(node: RealNode) -> None:
    """Volumes, overlay snapshots, network namespaces and /run mounts of this node's
    containerd, deepest first; a busy one is detached lazily."""
    roots = (
        str(node.dir) + "/",
        str(node.run_dir) + "/",
        str(node.kubelet_dir) + "/",
        "/run/containerd/io.containerd.",
        "/run/containerd/runc/",
    )
    for _ in range(3):
        mounts = [m for m in _mount_points() if m.startswith(roots)]
        if not mounts:
            return
        for mount in sorted(mounts, key=len, reverse=True):
            if subprocess.run(["umount", mount], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", mount], capture_output=True)


def _clean_network() -> None:
    run("ip", "link", "delete", BRIDGE, check=False)
    for blocked in UNREACHABLE:
        run("ip", "route", "del", "unreachable", blocked, check=False)
    for link in run("ip", "-o", "link", "show", check=False).stdout.splitlines():
        # Pod veths whose namespace is gone but whose host end lingers on the bridge.
        match = re.match(r"\d+: (veth[0-9a-f]+)@", link)
        if match and f"master {BRIDGE}" in link:
            run("ip", "link", "delete", match.group(1), check=False)
    # Every rule naming the bridge: ours, and any an earlier version or a killed run left.
    for line in run("iptables-save", "-t", "filter", check=False).stdout.splitlines():
        if line.startswith("-A ") and BRIDGE in line:
            run("iptables", "-D", *shlex.split(line)[1:], check=False)
    # kube-proxy's and kube-router's own clean-up of every chain, rule and ipset they wrote.
    for tool, flag in (("kube-proxy", "--cleanup"), ("kube-router", "--cleanup-config")):
        with contextlib.suppress(ToolMissing):
            binary = str(toolchain.find(tool))
            subprocess.run([binary, flag], capture_output=True, check=False, timeout=60)
    # What neither cleans: the kubelet's own chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY,
    # KUBE-IPTABLES-HINT) and anything a killed run left.
    for command in ("iptables", "ip6tables"):
        _remove_chains(command, RULE_PREFIX)
    for name in run("ipset", "list", "-n", check=False).stdout.split():
        if name.startswith(RULE_PREFIX):
            run("ipset", "destroy", name, check=False)


def _remove_cgroups() -> None:
    for controller in CGROUP_ROOT.iterdir():
        base = controller / KUBEPODS
        if not base.is_dir() or base.is_symlink():
            continue
        for path in sorted(base.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir():
                with contextlib.suppress(OSError):
                    path.rmdir()
        with contextlib.suppress(OSError):
            base.rmdir()


def _remove_chains(command: str, prefix: str) -> None:
    """Delete every rule that jumps to a chain named `prefix*`, then those chains, per table."""
    if shutil.which(command) is None:
        return
    for table in ("filter", "nat", "mangle", "raw"):
        saved = run(f"{command}-save", "-t", table, check=False).stdout.splitlines()
        for argv in chain_commands(command, table, saved, lambda chain: chain.startswith(prefix)):
            run(*argv, check=False)


def chain_commands(
    command: str, table: str, saved: list[str], owned: Callable[[str], bool]
) -> list[list[str]]:
    """What takes back the `owned` chains of one table, from its `<command>-save` lines: every
    rule of another chain that jumps to one deleted, then all of them flushed, then deleted (they
    jump to each other). A chain that is not there needs nothing."""
    jumps: list[list[str]] = []
    for line in saved:
        if not line.startswith("-A "):
            continue
        parts = shlex.split(line)  # comments are quoted and hold spaces
        target = parts[parts.index("-j") + 1] if "-j" in parts else None
        if target is not None and owned(target) and not owned(parts[1]):
            jumps.append([command, "-t", table, "-D", *parts[1:]])
    chains = [line[1:].split()[0] for line in saved if line.startswith(":")]
    chains = [chain for chain in chains if owned(chain)]
    flushes = [[command, "-t", table, "-F", chain] for chain in chains]
    return jumps + flushes + [[command, "-t", table, "-X", chain] for chain in chains]


def _cgroup_pids() -> list[int]:
    found: set[int] = set()
    for controller in ("pids", "memory", "cpu", "freezer"):
        base = CGROUP_ROOT / controller / KUBEPODS
        if not base.is_dir():
            continue
        for procs in base.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                found.update(int(line) for line in procs.read_text().split())
    return sorted(found)


def _mount_points() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        field = line.split()[4]
        points.append(field.replace("\\040", " "))
    return points


def leftovers(node: RealNode) -> list[str]:
    """What a stopped node must not leave behind, for tests and `cluster status`: processes,
    mounts, the bridge and veths, iptables rules and ipsets, kubepods cgroups."""
    found: list[str] = []
    names = ("kubelet", "containerd", "containerd-shim-runc-v2", "kube-proxy")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            binary = Path(cmdline[0].decode(errors="replace")).name
            # Shims name their containerd's socket, in the node's run directory.
            joined = b" ".join(cmdline)
            ours = any(
                str(d).encode() in joined for d in (node.dir, node.run_dir, node.kubelet_dir)
            )
            if binary in names and ours:
                found.append(f"process {entry.name} ({binary})")
    found += [
        f"mount {m}" for m in _mount_points() if m.startswith((str(node.dir), str(node.run_dir)))
    ]
    if node.run_dir.exists():
        found.append(f"directory {node.run_dir}")
    if run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
        found.append(f"interface {BRIDGE}")
    routes = run("ip", "route", "show", "type", "unreachable", check=False).stdout
    blocked = {prefix.removesuffix("/32") for prefix in UNREACHABLE}
    found += [f"route {line}" for line in routes.splitlines() if line.split()[-1] in blocked]
    for command in ("iptables-save", "ip6tables-save"):
        rules = run(command, check=False).stdout if shutil.which(command) else ""
        found += [
            f"{command}: {line}"
            for line in rules.splitlines()
            if RULE_PREFIX in line or BRIDGE in line
        ]
    sets = run("ipset", "list", "-n", check=False).stdout.split()
    found += [f"ipset {name}" for name in sets if name.startswith(RULE_PREFIX)]
    if _cgroup_pids():
        found.append("processes in kubepods cgroups")
    return found
