complete -c probe-host -s H -l host -d 'Host name or address to probe (repeatable)' -r
complete -c probe-host -l hosts -d 'File of hosts: one name or address per line, or TOML ([[host]] with name, address, ports, labels, icmp)' -r -F
complete -c probe-host -s p -l port -d 'TCP ports to connect to on every host: 22,111,16509 and ranges 8000-8010 (repeatable)' -r
complete -c probe-host -s n -l packets -d 'ICMP echoes per address' -r
complete -c probe-host -s i -l interval -d 'Least time between any two echoes sent, to any host (fping -i)' -r
complete -c probe-host -s I -l target-interval -d 'Least time between two echoes to the same address (fping -p; check_icmp -i)' -r
complete -c probe-host -l icmp-wait -d 'How long an echo reply may take; a later one counts as lost' -r
complete -c probe-host -s b -l size -d 'ICMP payload bytes' -r
complete -c probe-host -l icmp-socket -d 'Which ICMP socket to use' -r -f -a "auto\t'The unprivileged datagram socket, else the raw one'
datagram\t'Only the datagram socket (net.ipv4.ping_group_range)'
raw\t'Only the raw socket (CAP_NET_RAW)'"
complete -c probe-host -s w -l warning -d 'Warning: with ICMP, RTA,PL% (e.g. 200,40%) [default: 200,40%]; with ports alone, response time in seconds (Nagios range)' -r
complete -c probe-host -s c -l critical -d 'Critical: with ICMP, RTA,PL% (e.g. 500,80%) [default: 500,80%]; with ports alone, response time in seconds (Nagios range)' -r
complete -c probe-host -l connect-warning -d 'Ports\' response time warning in seconds, when ICMP runs too' -r
complete -c probe-host -l connect-critical -d 'Ports\' response time critical in seconds, when ICMP runs too' -r
complete -c probe-host -l jitter -d 'ICMP jitter limits in ms, WARN,CRIT (alert above)' -r
complete -c probe-host -l mos -d 'ICMP mean opinion score limits, WARN,CRIT (alert below; 1-5)' -r
complete -c probe-host -l score -d 'ICMP score (the E-model\'s R, 0-100) limits, WARN,CRIT (alert below)' -r
complete -c probe-host -s m -l min-alive -d 'At least N of a host\'s addresses must be alive (implies --all-addresses)' -r
complete -c probe-host -l min-alive-hosts -d 'At least N of the hosts must be alive (check_icmp -m over several -H): one record for the whole group, each host in its trace and details, instead of one record per host' -r
complete -c probe-host -l group -d 'The group\'s name in its record (with --min-alive-hosts)' -r
complete -c probe-host -s s -l send -d 'Text to send on each open port (check_tcp -s)' -r
complete -c probe-host -s e -l expect -d 'Text the port\'s answer must contain (repeatable; any one, or all with -A)' -r
complete -c probe-host -s M -l mismatch -d 'State when the answer lacks the -e text' -r
complete -c probe-host -s d -l delay -d 'Wait this long after -s before reading the answer (check_tcp -d; seconds, or 500ms). The deadline still holds' -r
complete -c probe-host -s q -l quit -d 'Text to send before closing (check_tcp -q)' -r
complete -c probe-host -s r -l refuse -d 'State of a refused port' -r
complete -c probe-host -s D -l certificate -d 'With -S: minimum days left on the certificate chain, WARN[,CRIT]' -r
complete -c probe-host -l ca-file -d 'With -S: trust only the CA certificates in this PEM file (without it, the system\'s bundle /etc/ssl/certs/ca-certificates.crt, or Mozilla\'s roots when there is none)' -r -F
complete -c probe-host -l max-bytes -d 'Read at most this many bytes of each answer' -r
complete -c probe-host -l in-flight -d 'TCP connects in flight at most [default: all at once, within the open-file limit, whose soft value is raised to the hard one as needed]' -r
complete -c probe-host -l table -d 'The decision table (TOML [[rule]] with when, verdict, why) [default: the shipped table, in the man page and examples/verdict-table.toml]' -r -F
complete -c probe-host -l network -d 'Another network every host is on, its address made from the management one: NAME=PREFIX/LEN keeps the host part (storage=10.2.0.0/16), NAME=+N adds N (repeatable)' -r
complete -c probe-host -l management-network -d 'The name of the network of each host\'s own address' -r
complete -c probe-host -l skip -d 'Do not gather this signal: instances, nova or neutron (repeatable)' -r -f -a "instances\t''
nova\t''
neutron\t''"
complete -c probe-host -l service-down-time -d 'A nova-compute not reported for this long is stale (Nova\'s service_down_time)' -r
complete -c probe-host -l agent-down-time -d 'A Neutron agent without a heartbeat for this long is stale (Neutron\'s agent_down_time)' -r
complete -c probe-host -l instance-port -d 'Ports of the host\'s servers to connect to' -r
complete -c probe-host -l instance-network -d 'The servers\' network whose addresses are probed [default: every address]' -r
complete -c probe-host -l instances-max -d 'Servers probed per host at most (ACTIVE ones, in Nova\'s order)' -r
complete -c probe-host -l crm-mon -d 'The command that prints Pacemaker\'s state as XML' -r
complete -c probe-host -l bmc-command -d 'A command that prints a host\'s power state (on/off), as evidence only; {host}, {bmc} and {address} are replaced, e.g. \'ipmitool -I lanplus -H {bmc} -U admin -E power status\' (its output other than the state is never shown)' -r
complete -c probe-host -l peer-records -d 'Other vantage points\' probe-host records (JSON lines), for indirect confirmation (repeatable)' -r -F
complete -c probe-host -l peer-max-age -d 'Peer records older than this are ignored' -r
complete -c probe-host -l control -d 'A target that must answer for the observer to be trusted: HOST (ICMP) or HOST:PORT (repeatable); when they do not, no host is judged dead' -r
complete -c probe-host -l control-min -d 'Control targets that must answer [default: all]' -r
complete -c probe-host -l samples -d 'Dead only after N dead samples in a row, or N of the last M runs (N/M); kept in --state' -r
complete -c probe-host -l cliff -d 'When at least this share of the hosts alive in the last run is lost at once (two or more), no host is dead for --cliff-runs runs (off to disable)' -r
complete -c probe-host -l cliff-runs -d 'Runs a cliff is waited out' -r
complete -c probe-host -l max-dead -d 'More dead hosts than this at once: none is dead (unknown, the brake)' -r
complete -c probe-host -l max-dead-percent -d 'More than this share of the hosts dead at once: none is dead (off to disable)' -r
complete -c probe-host -l max-dead-per-zone -d 'More dead hosts than this in one zone (the host\'s zone or az label, or Nova\'s zone) at once: none of that zone is dead' -r
complete -c probe-host -l max-dead-per-aggregate -d 'More dead hosts than this in one host aggregate (Nova\'s, with --openstack, or the host\'s aggregate label, comma-separated) at once: none of that aggregate is dead' -r
complete -c probe-host -l state -d 'Keep samples, the last run\'s alive hosts and a cliff here between runs' -r -F
complete -c probe-host -l probe-timeout -d 'How long each probe phase (the hosts\' networks, then their servers) may take' -r
complete -c probe-host -l os-cloud -d 'The cloud in clouds.yaml (./, ~/.config/openstack/, /etc/openstack/; secure.yaml merged) [default: OS_CLOUD, else the OS_* variables]' -r
complete -c probe-host -l os-interface -d 'Endpoint interface: public, internal or admin [default: the cloud\'s, else public]' -r
complete -c probe-host -l os-region -d 'Region for the catalog [default: the cloud\'s, or OS_REGION_NAME]' -r
complete -c probe-host -l os-endpoint-override -d 'Use this URL for a service type instead of the catalog\'s: TYPE=URL, e.g. compute=https://nova.internal:8774/v2.1 (repeatable)' -r
complete -c probe-host -s t -l timeout -d 'Deadline for the whole run: a number of seconds or a duration (500ms, 1m). Work not finished by then is reported in the --timeout-state [default: 10 s; watch-procs with --config: 60 s]' -r
complete -c probe-host -l timeout-state -d 'State reported for work cut off by the deadline' -r
complete -c probe-host -l label -d 'Add a label to every record (repeatable), e.g. --label az=zone-a' -r
complete -c probe-host -l format -d 'Output format [default: table on a terminal, jsonl otherwise]' -r -f -a "jsonl\t'One JSON record per line (the default in a pipe)'
nagios\t'Nagios plugin output: status line, long output, performance data'
nagios-line\t'The Nagios status line and its perfdata only, no long output: for Sensu Go\'s nagios_perfdata, which reads every word after the first | of the whole output as a metric'
table\t'A table for people (the default on a terminal)'
csv\t'CSV with a header row'
prometheus\t'Prometheus text exposition (for node_exporter\'s textfile collector)'"
complete -c probe-host -l output -d 'Write the output to FILE atomically (temporary file + rename) instead of stdout; rewritten whole each round, fit for node_exporter\'s textfile collector' -r -F
complete -c probe-host -l every -d 'Repeat the run every DURATION and keep streaming records (default: run once)' -r
complete -c probe-host -l count -d 'With --every: stop after N rounds' -r
complete -c probe-host -l hostname -d 'Name of this machine in records [default: the system host name]' -r
complete -c probe-host -s 4 -d 'Use IPv4 addresses only'
complete -c probe-host -s 6 -d 'Use IPv6 addresses only'
complete -c probe-host -l all-addresses -d 'Probe every address a name resolves to, not only the first'
complete -c probe-host -l icmp -d 'Send ICMP echoes too when ports are given (ICMP is the default without -p)'
complete -c probe-host -s A -l all -d 'Every -e text must come, not any one'
complete -c probe-host -s S -l ssl -d 'TLS handshake on each open port (check_tcp -S)'
complete -c probe-host -l insecure -d 'With -S: do not verify the chain (it is still read for -D)'
complete -c probe-host -s E -l escape -d 'Read \\n, \\r, \\t, \\\\ and \\0 in -s and -q (check_tcp -E)'
complete -c probe-host -s j -l jail -d 'Keep what the server sent out of records (check_tcp -j)'
complete -c probe-host -l per-port -d 'A record for each port too, besides the one per host'
complete -c probe-host -l verdict -d 'Judge each host alive, suspect, dead or unknown from every signal given, through the decision table, the samples and the observer gates (ports default to 22,111,16509, with ICMP)'
complete -c probe-host -l hypervisors -d 'Hosts from Nova\'s hypervisors too (their host_ip on the management network)'
complete -c probe-host -l openstack -d 'Ask OpenStack: Nova\'s nova-compute services, Neutron\'s agents and the host\'s servers (the --os-* flags say which cloud)'
complete -c probe-host -l pacemaker -d 'Ask Pacemaker for node state and quorum (--crm-mon)'
complete -c probe-host -l no-token-cache -d 'Do not cache the token (by default it is kept, readable only by this user, until shortly before it expires)'
complete -c probe-host -s v -l verbose -d 'Print each record\'s trace to stderr (-vv adds its details)'
complete -c probe-host -s h -l help -d 'Print help (see more with \'--help\')'
complete -c probe-host -s V -l version -d 'Print version'
