#!/bin/sh
# Stand-in for `java` running the Greengrass nucleus installer (device lab). It does what the installer does to
# the operating system and nothing else: no JVM, no nucleus, no network.
#   java -version / --version                 -> a JRE's version banner (on stderr, as java prints it)
#   java -jar .../Greengrass.jar --version    -> "AWS Greengrass v<version>"
#   java -Droot=R ... -jar .../Greengrass.jar --init-config FILE --component-default-user U:G ...
#                                             -> creates group G and user U (useradd -r -m) when missing,
#                                                keeps FILE as R/config/config.yaml
set -eu
NUCLEUS_VERSION=2.14.2
ROOT="$HOME/.greengrass"
JAR=""
INIT_CONFIG=""
DEFAULT_USER=""
WANT_VERSION=""
while [ $# -gt 0 ]; do
  case "$1" in
    -version|--version) WANT_VERSION=1 ;;
    -Droot=*) ROOT="${1#-Droot=}" ;;
    -D*) ;;
    -jar) JAR="$2"; shift ;;
    --init-config) INIT_CONFIG="$2"; shift ;;
    --component-default-user) DEFAULT_USER="$2"; shift ;;
    --setup-system-service|--provision|--deploy-dev-tools|--aws-region|--thing-name) shift ;;
    *) ;;
  esac
  shift
done
if [ -z "$JAR" ]; then
  if [ -n "$WANT_VERSION" ]; then
    echo 'openjdk version "17.0.13" 2024-10-15' >&2
    echo 'OpenJDK Runtime Environment (build 17.0.13+11-Debian-2deb12u1)' >&2
    echo 'OpenJDK 64-Bit Server VM (build 17.0.13+11-Debian-2deb12u1, mixed mode, sharing)' >&2
    exit 0
  fi
  echo "Usage: java [options] -jar <jarfile> [args...]" >&2; exit 1
fi
[ -f "$JAR" ] || { echo "Error: Unable to access jarfile $JAR" >&2; exit 1; }
if [ -n "$WANT_VERSION" ]; then echo "AWS Greengrass v$NUCLEUS_VERSION"; exit 0; fi
[ -n "$INIT_CONFIG" ] && [ -f "$INIT_CONFIG" ] || { echo "installer: --init-config file missing" >&2; exit 1; }
if [ -n "$DEFAULT_USER" ]; then
  USER_NAME="${DEFAULT_USER%%:*}"
  GROUP_NAME="${DEFAULT_USER#*:}"
  [ "$GROUP_NAME" != "$DEFAULT_USER" ] || GROUP_NAME="$USER_NAME"
  getent group "$GROUP_NAME" >/dev/null || groupadd -r "$GROUP_NAME"
  id "$USER_NAME" >/dev/null 2>&1 || useradd -r -m -g "$GROUP_NAME" "$USER_NAME"
fi
mkdir -p "$ROOT/config"
cp "$INIT_CONFIG" "$ROOT/config/config.yaml"
echo "Launching Nucleus..."
echo "Launched Nucleus successfully."
