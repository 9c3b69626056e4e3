#!/usr/bin/env bash
# Java interop suite for warren: the RabbitMQ Java client from Debian's
# librabbitmq-client-java package, driven by a small self-written runner (src/interop).
#
#   AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f BROKER_RESTART='...' bash interop/java/run.sh [FILTER...]
#
# Normally started by interop/run.sh, which provides AMQP_URL, BROKER_KIND and BROKER_RESTART.
# Installs javac and the client jar with apt-get when missing, compiles into build/ and runs
# every test (or those whose Class.method contains one of the FILTER arguments).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

apt_install() {
  echo "java/run.sh: installing $*" >&2
  export DEBIAN_FRONTEND=noninteractive
  local apt=(apt-get -o DPkg::Lock::Timeout=600 -y -qq)
  if ! "${apt[@]}" install "$@" >/dev/null 2>&1; then
    "${apt[@]}" update >/dev/null
    "${apt[@]}" install "$@" >/dev/null
  fi
}

command -v javac >/dev/null 2>&1 || apt_install default-jdk-headless
client=/usr/share/java/amqp-client.jar
[ -f "$client" ] || apt_install librabbitmq-client-java
[ -f "$client" ] || { echo "java/run.sh: $client missing after install" >&2; exit 1; }

# The client needs slf4j-api (a dependency of the package); slf4j-nop keeps it quiet.
cp=$client
for jar in slf4j-api.jar slf4j-nop.jar; do
  [ -f "/usr/share/java/$jar" ] && cp=$cp:/usr/share/java/$jar
done

build=$here/build
classes=$build/classes
stamp=$build/.compiled
if [ ! -f "$stamp" ] || [ -n "$(find "$here/src" -newer "$stamp" -name '*.java' | head -1)" ]; then
  rm -rf "$classes"
  mkdir -p "$classes"
  javac -nowarn -encoding UTF-8 --release 17 -cp "$cp" -d "$classes" "$here"/src/interop/*.java
  touch "$stamp"
fi

: "${AMQP_URL:?AMQP_URL must be set (interop/run.sh sets it)}"
exec java -cp "$classes:$cp" interop.Runner "$@"
