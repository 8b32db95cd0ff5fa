#!/bin/sh
# Entrypoint of the crmlink/asterisk image (docker/Dockerfile.asterisk): the sample
# configuration of asterisk-conf/ with the listening addresses taken from the
# environment, so this Asterisk can run beside another one on the same host network.
#   ASTERISK_SIP_BIND   PJSIP UDP transport, default 127.0.0.1:5060
#   ASTERISK_HTTP_PORT  HTTP (ARI) port on 127.0.0.1, default 8088
# Mount your own configuration on /etc/asterisk.crmlink to replace the sample.
set -eu
sip=${ASTERISK_SIP_BIND:-127.0.0.1:5060}
http_port=${ASTERISK_HTTP_PORT:-8088}

rm -rf /etc/asterisk
cp -r /etc/asterisk.crmlink /etc/asterisk
sed -i "s/^bind = 127\.0\.0\.1:5060\$/bind = $sip/" /etc/asterisk/pjsip.conf
sed -i "s/^bindport = 8088\$/bindport = $http_port/" /etc/asterisk/http.conf
grep -q "^bind = $sip\$" /etc/asterisk/pjsip.conf || { echo "asterisk-entrypoint: no 'bind = 127.0.0.1:5060' in pjsip.conf to set to $sip" >&2; exit 1; }

# What the Debian package's service would prepare.
mkdir -p /run/asterisk
chown -R asterisk:asterisk /run/asterisk /var/lib/asterisk /var/log/asterisk /var/spool/asterisk
exec asterisk -f -U asterisk -G asterisk "$@"
