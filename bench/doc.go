// Package bench measures what crmlink costs on call setup, against the baseline that
// matters: the same Asterisk routing the same trunk calls with a static Dial() and no
// crmlink, in the same run on the same machine.
//
// The driver (bench/cmd/crmlink-bench, run by `make bench`) places real SIP calls with
// sipp: a UAC from the trunk address 127.0.0.2 into the rig's Asterisk, and one sipp UAS
// on 127.0.0.1:5181 that answers at once for every "manager phone" (the bench-* endpoints
// of asterisk-conf/pjsip.conf). Each path is driven at fixed rates and then stepped to
// the highest rate it sustains:
//
//	baseline            5XX: static Dial() to the manager phone, no crmlink
//	baseline-observed   the same calls with crmlink's call observer recording each one
//	ari-cached          61X: Stasis(crmlink-bench), the owner in crmlink's cache
//	ari-cached-redis    the same with the owner cache in the rig's Redis
//	stasis-floor        61X with no crmlink: the least an ARI application does (the dial
//	                    variables in one request and the continue; crmlink-pprof --floor)
//	stasis-floor-follow the same with the channel followed as crmlink's controller does
//	stasis-floor-unfiltered  the same with no event filter, every event counted
//	ari-indexed         the owner moved by an amoCRM webhook (Source index)
//	ari-cold            every call a new number, amoCRM 50 ms away and 7 requests/s
//	ari-cold-crm50      the same with the CRM budget raised to 50 requests/s
//	agi-cached          62X: AGI(agi://127.0.0.1:4583/route), the owner cached
//	redirect            sipp straight against crmlink's SIP redirect server (302)
//
// crmlink and the amoCRM sandbox run as real processes (bin/crmlink serve, bin/amocrm-
// sandbox) with generated configuration. A step sustains its rate when fewer than 0.1%
// of its calls fail, the answers keep up with the offered rate (95%), the 99th percentile
// of INVITE to 200 OK stays under one second, and, for crmlink's paths, fewer than 0.1%
// of its calls fall back: a crmlink that sends calls to the operator desk is not routing.
//
// Every stretch that places calls holds the rig lock (flock on /tmp/crmlink-rig.lock,
// the same lock as the end-to-end tests): one step, the ARI census or the profiling run at
// a time, so the tests can run in between. Results go to results/: bench.json, bench.md
// and bench-latency.svg, with the raw sipp files and crmlink logs under results/bench-raw/.
package bench
