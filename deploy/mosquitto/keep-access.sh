#!/bin/sh
# Keep Mosquitto's logins and ACLs in step with the device registry: one user per device
# group, on its own topics only, and the ingest workers' user, whose password is the one
# the ingest service is given (CONTESTO_MQTT_PASSWORD), so both read it from one Secret.
set -eu
out=${CONTESTO_MQTT_ACCESS_DIR:?set CONTESTO_MQTT_ACCESS_DIR to the directory Mosquitto reads}
ingest_user=${CONTESTO_MQTT_USERNAME:-contesto-ingest}
ingest_line="$ingest_user:${CONTESTO_MQTT_PASSWORD:?set CONTESTO_MQTT_PASSWORD}"
umask 077
mkdir -p "$out"

# `contesto devices mqtt-acl` keeps the passwords it finds in `credentials`: give it the
# ingest user's, first, where it writes it.
if ! grep -qxF "$ingest_line" "$out/credentials" 2>/dev/null; then
    others=$(grep -v "^$ingest_user:" "$out/credentials" 2>/dev/null || true)
    printf '%s\n' "$ingest_line" > "$out/credentials.seed"
    if [ -n "$others" ]; then printf '%s\n' "$others" >> "$out/credentials.seed"; fi
    mv "$out/credentials.seed" "$out/credentials"
fi

exec contesto devices mqtt-acl --out "$out" --ingest-user "$ingest_user" \
    --database "${CONTESTO_PIPELINE_DATABASE:-contesto_ingest}" --every "${ACCESS_REFRESH_S:-2}"
