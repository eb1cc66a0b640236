#!/usr/bin/env python3
# install_test.py: `cmake --install <build> --prefix <temp>` installs what issue 14 lists and nothing else: the six
# programs in bin/ (no tests, benches or fuzzers), the systemd units, the example configs and scenarios, the
# schemas and zshare-harness's scripts; then every installed program's --version prints one line, its name and
# the version of the top-level CMakeLists.txt's project() line (plus the git commit of a build from git).
import argparse
import os
import re
import subprocess
import sys
import tempfile

PROGRAMS = ["zshare-broker", "zshare-peer", "zshare-timesvc", "zshare-rpclog", "zshare-events", "zshare-harness"]
PASSED = []


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    PASSED.append(what)


def project_version(source_dir):
    with open(os.path.join(source_dir, "CMakeLists.txt"), encoding="utf-8") as f:
        m = re.search(r"^project\(zshare\s+VERSION\s+([0-9][0-9.]*)", f.read(), re.M)
    check(m is not None, "the top-level CMakeLists.txt has project(zshare VERSION x.y.z)")
    return m.group(1)


def cache_value(build_dir, name, default):
    """An install directory as this build was configured (GNUInstallDirs), e.g. CMAKE_INSTALL_BINDIR=bin."""
    with open(os.path.join(build_dir, "CMakeCache.txt"), encoding="utf-8") as f:
        m = re.search(r"^%s:[A-Z]+=(.*)$" % name, f.read(), re.M)
    return m.group(1) if m and m.group(1) else default


def files_under(root):
    out = set()
    for d, _, names in os.walk(root):
        out.update(os.path.relpath(os.path.join(d, n), root) for n in names)
    return out


def sources(folder, keep=lambda name: True):
    return sorted(n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n)) and keep(n))


def git_commit_exists(source_dir, commit):
    r = subprocess.run(["git", "-C", source_dir, "rev-parse", "--verify", "--quiet", commit + "^{commit}"],
                       capture_output=True, text=True)
    return r.returncode == 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cmake", required=True)
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--source-dir", required=True)
    args = parser.parse_args()
    src, build = os.path.abspath(args.source_dir), os.path.abspath(args.build_dir)
    version = project_version(src)
    bindir = cache_value(build, "CMAKE_INSTALL_BINDIR", "bin")
    datadir = cache_value(build, "CMAKE_INSTALL_DATADIR", "share")
    docdir = cache_value(build, "CMAKE_INSTALL_DOCDIR", os.path.join(datadir, "doc", "zshare"))

    expected = {os.path.join(bindir, p) for p in PROGRAMS}
    expected |= {os.path.join("lib/systemd/system", n)
                 for n in sources(os.path.join(src, "examples/systemd"), lambda n: n.endswith(".service"))}
    for sub in ("config", "scenarios"):
        expected |= {os.path.join(docdir, "examples", sub, n) for n in sources(os.path.join(src, "examples", sub))}
    expected |= {os.path.join(datadir, "zshare/schemas", n) for n in sources(os.path.join(src, "schemas"))}
    harness = os.path.join(datadir, "zshare/harness")
    expected |= {os.path.join(harness, n)
                 for n in sources(os.path.join(src, "tools/harness"), lambda n: n.endswith(".py"))}
    expected |= {os.path.join(harness, n) for n in ("VERSION", "SCENARIOS.md")}
    check(any(p.endswith(".toml") for p in expected) and any(p.endswith(".service") for p in expected),
          "the source tree has example configs and systemd units to expect")

    with tempfile.TemporaryDirectory(prefix="zshare-install-") as prefix:
        r = subprocess.run([args.cmake, "--install", build, "--prefix", prefix], capture_output=True, text=True,
                           timeout=120)
        check(r.returncode == 0, "cmake --install exits 0: %s %s" % (r.stdout[-2000:], r.stderr[-2000:]))
        installed = files_under(prefix)
        missing, extra = sorted(expected - installed), sorted(installed - expected)
        check(not missing, "every expected file is installed; missing: %s" % missing)
        check(not extra, "nothing else is installed (no test program, bench or fuzzer): %s" % extra)
        for p in PROGRAMS:
            check(os.access(os.path.join(prefix, bindir, p), os.X_OK), "%s is executable" % p)
        launcher = open(os.path.join(prefix, bindir, "zshare-harness"), encoding="utf-8").read()
        check(src not in launcher and build not in launcher,
              "the installed zshare-harness names neither the source nor the build tree")

        # --version: one line on stdout, exit 0, the same version text for all six programs.
        texts = set()
        env = dict(os.environ, PATH="/usr/bin:/bin")  # the installed programs only: no build tree on PATH
        env.pop("ZSHARE_HARNESS_VERSION_FILE", None)
        for p in PROGRAMS:
            r = subprocess.run([os.path.join(prefix, bindir, p), "--version"], capture_output=True, text=True,
                               timeout=30, env=env, cwd=prefix)
            check(r.returncode == 0, "%s --version exits 0: %d %r" % (p, r.returncode, r.stderr))
            check(r.stderr == "", "%s --version writes nothing on stderr: %r" % (p, r.stderr))
            m = re.fullmatch(r"(\S+) (\S+)(?: \(git ([0-9a-f]{7,40})\))?\n", r.stdout)
            check(m is not None, "%s --version prints one line 'NAME VERSION [(git COMMIT)]': %r" % (p, r.stdout))
            check(m.group(1) == p, "%s --version names the program: %r" % (p, r.stdout))
            check(m.group(2) == version, "%s --version prints version %s: %r" % (p, version, r.stdout))
            if m.group(3) and os.path.exists(os.path.join(src, ".git")):
                check(git_commit_exists(src, m.group(3)), "%s --version names a commit of this repository: %r"
                      % (p, r.stdout))
            texts.add(r.stdout.split(" ", 1)[1])
        check(len(texts) == 1, "all six programs print the same version text: %s" % sorted(texts))
        if os.path.exists(os.path.join(src, ".git")) and subprocess.run(
                ["git", "--version"], capture_output=True).returncode == 0:
            check("(git " in texts.pop(), "a build from a git checkout names its commit")
    check(not os.path.exists(prefix), "the temporary prefix is removed")
    print("install: %d checks passed" % len(PASSED))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print("FAIL: %s" % e, file=sys.stderr)
        print("install: %d checks passed before the failure" % len(PASSED), file=sys.stderr)
        sys.exit(1)
