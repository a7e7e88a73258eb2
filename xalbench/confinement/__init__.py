"""Operating-system confinement of untrusted plugin code (Linux; no root needed, stronger as root).

:func:`apply` confines the calling process (a freshly forked child) to a :class:`Profile` with
Landlock (files, TCP, signals), a seccomp filter (sockets, ptrace, kernel surface), a network
namespace and an unprivileged user id where privileged, and resource limits; it returns the
:class:`Applied` record. :func:`probe` says what the kernel offers without confining anything.
Each module's docstring says exactly what it does and does not protect.
"""

from xalbench.confinement.apply import Applied, apply, describe
from xalbench.confinement.limits import Limits
from xalbench.confinement.paths import code_paths
from xalbench.confinement.probe import Probe, probe, resolve_isolation
from xalbench.confinement.profile import Profile

__all__ = ["Applied", "Limits", "describe", "Probe", "Profile", "apply", "code_paths", "probe", "resolve_isolation"]
