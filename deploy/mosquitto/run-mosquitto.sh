#!/bin/sh
# Start Mosquitto once its access files exist, and reload them (SIGHUP) whenever the
# mqtt-access service rewrites them; SIGTERM stops Mosquitto, which saves its messages.
set -eu
access=${MOSQUITTO_ACCESS:-/mosquitto/access}
config=${MOSQUITTO_CONFIG:-/mosquitto/config/mosquitto.conf}

until [ -s "$access/acl" ] && [ -s "$access/passwd" ]; do
    echo "waiting for $access/acl and $access/passwd (the mqtt-access service writes them)"
    sleep 2
done

mosquitto -c "$config" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT

fingerprint() { cat "$access/acl" "$access/passwd" | cksum; }
seen=$(fingerprint)
while kill -0 "$pid" 2>/dev/null; do
    sleep 2 &
    wait $! || true
    now=$(fingerprint)
    if [ "$now" != "$seen" ]; then
        echo "access files changed: reloading Mosquitto"
        kill -HUP "$pid"
        seen=$now
    fi
done
wait "$pid"
