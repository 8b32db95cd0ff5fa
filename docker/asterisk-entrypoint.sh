#!/bin/sh
# Entrypoint of the crmlink/asterisk image (docker/Dockerfile.asterisk): the sample
# configuration of asterisk-conf/ with the listening addresses taken from the
# environment, so this Asterisk can run beside another one on the same host network.
#   ASTERISK_SIP_BIND   PJSIP UDP transport, default 127.0.0.1:5060
#   ASTERISK_HTTP_PORT  HTTP (ARI) port on 127.0.0.1, default 8088
# and, for a PBX on a network of its own (deploy/cluster/compose.yaml), optionally:
#   ASTERISK_AGI_ADDR      host:port of crmlink's FastAGI (a load balancer), default 127.0.0.1:4573
#   ASTERISK_TRUNK_MATCH   the provider trunk's address or network, default 127.0.0.2
#   ASTERISK_DESK_CONTACT  the operator desk's SIP URI, default sip:100@127.0.0.1:5170
#   ASTERISK_SYSTEM_NAME   asterisk.conf systemname: prefixes every call's uniqueid and
#                          linkedid, so calls of several Asterisks are told apart
#   ASTERISK_ARI_INBOUND_URI  where the ARI Outbound WebSockets connect (websocket_client.conf
#                          [crmlink-outbound] and [crmlink-observer-outbound] uri: crmlink's
#                          asterisk.ari.inbound, or a load balancer), default
#                          ws://127.0.0.1:8097/ari/events
# Mount your own configuration on /etc/asterisk.crmlink to replace the sample.
set -eu
sip=${ASTERISK_SIP_BIND:-127.0.0.1:5060}
http_port=${ASTERISK_HTTP_PORT:-8088}

rm -rf /etc/asterisk
cp -r /etc/asterisk.crmlink /etc/asterisk
sed -i "s/^bind = 127\.0\.0\.1:5060\$/bind = $sip/" /etc/asterisk/pjsip.conf
sed -i "s/^bindport = 8088\$/bindport = $http_port/" /etc/asterisk/http.conf
grep -q "^bind = $sip\$" /etc/asterisk/pjsip.conf || { echo "asterisk-entrypoint: no 'bind = 127.0.0.1:5060' in pjsip.conf to set to $sip" >&2; exit 1; }
if [ -n "${ASTERISK_AGI_ADDR:-}" ]; then
	sed -i "s#agi://127\.0\.0\.1:4573/#agi://$ASTERISK_AGI_ADDR/#" /etc/asterisk/extensions.conf
fi
if [ -n "${ASTERISK_TRUNK_MATCH:-}" ]; then
	sed -i "s#^match = 127\.0\.0\.2\$#match = $ASTERISK_TRUNK_MATCH#" /etc/asterisk/pjsip.conf
fi
if [ -n "${ASTERISK_DESK_CONTACT:-}" ]; then
	sed -i "s#^contact = sip:100@127\.0\.0\.1:5170\$#contact = $ASTERISK_DESK_CONTACT#" /etc/asterisk/pjsip.conf
fi
if [ -n "${ASTERISK_SYSTEM_NAME:-}" ]; then
	sed -i "s#^\[options\]\$#[options]\nsystemname = $ASTERISK_SYSTEM_NAME#" /etc/asterisk/asterisk.conf
fi
if [ -n "${ASTERISK_ARI_INBOUND_URI:-}" ]; then
	sed -i "s#^uri = ws://127\.0\.0\.1:8097/ari/events\$#uri = $ASTERISK_ARI_INBOUND_URI#" /etc/asterisk/websocket_client.conf
	grep -q "^uri = $ASTERISK_ARI_INBOUND_URI\$" /etc/asterisk/websocket_client.conf || { echo "asterisk-entrypoint: no 'uri = ws://127.0.0.1:8097/ari/events' in websocket_client.conf" >&2; exit 1; }
fi

# What the Debian package's service would prepare.
mkdir -p /run/asterisk
chown -R asterisk:asterisk /run/asterisk /var/lib/asterisk /var/log/asterisk /var/spool/asterisk
exec asterisk -f -U asterisk -G asterisk "$@"
