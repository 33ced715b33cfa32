#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Entry point of the compose broker: write mosquitto's password file (hashed) from the
# environment, then run mosquitto. Passwords live in deploy/.env, never in the repository.
set -eu

conf="${MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}"
passwd="$(sed -n 's/^password_file[[:space:]]\{1,\}//p' "$conf")"
data="$(sed -n 's/^persistence_location[[:space:]]\{1,\}//p' "$conf")"

: "${HUB_MQTT_PASSWORD:?the hub's broker password: set it in deploy/.env}"
: "${OPERATOR_MQTT_PASSWORD:?the operator account's broker password: set it in deploy/.env}"

umask 077
rm -f "$passwd"
touch "$passwd"
mosquitto_passwd -b "$passwd" twinhub "$HUB_MQTT_PASSWORD"
mosquitto_passwd -b "$passwd" operator "$OPERATOR_MQTT_PASSWORD"
# Started as root, mosquitto drops to its own user before it reads the password file and
# writes its persistence directory (the image's own entry point, replaced here, did this chown).
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
    chown mosquitto "$passwd"
    chown -R mosquitto "$data"
fi

exec mosquitto -c "$conf"
