complete -c probe-http -s H -l host -d 'Host name to probe; sent as the Host header (check_http -H)' -r
complete -c probe-http -s I -l IP-address -d 'IP address to connect to instead of resolving the host (check_http -I)' -r
complete -c probe-http -s p -l port -d 'Port [default: 80, or 443 with -S]' -r
complete -c probe-http -s u -l uri -d 'Path and query to request' -r
complete -c probe-http -l name -d 'Name for the target in records [default: the URL]' -r
complete -c probe-http -s j -l method -d 'HTTP method [default: GET, or POST with a body]' -r
complete -c probe-http -s P -l post -d 'Request body (check_http -P)' -r
complete -c probe-http -l data -d 'Request body: text, or @FILE to read it from a file' -r
complete -c probe-http -s T -l content-type -d 'Content-Type of the request body' -r
complete -c probe-http -s k -l header -d 'Extra request header, \'Name: value\' (repeatable)' -r
complete -c probe-http -s a -l authorization -d 'Basic authentication, user:password (check_http -a). Prefer --auth-file' -r
complete -c probe-http -l auth-file -d 'Read user:password for Basic authentication from the first line of FILE' -r -F
complete -c probe-http -l bearer-file -d 'Bearer token file: sends \'Authorization: Bearer <first line>\'' -r -F
complete -c probe-http -s A -l useragent -d 'User-Agent header' -r
complete -c probe-http -s e -l expect -d 'Expected status codes: 200, 200,204, 2xx, 200-299 [default: 5xx CRITICAL, 4xx WARNING, others OK]' -r
complete -c probe-http -s s -l string -d 'Text the body must contain' -r
complete -c probe-http -s r -l regex -l ereg -d 'Regular expression the body must match' -r
complete -c probe-http -s R -l eregi -d 'Case-insensitive regular expression the body must match' -r
complete -c probe-http -l json -d 'JSON assertion on the body: PATH [OP VALUE], e.g. \'.status == "UP"\', \'.items|length > 0\', \'.ready\' (repeatable; ops == != < <= > >= =~)' -r
complete -c probe-http -l expect-header -d 'Response header that must be present: NAME, or \'NAME: REGEX\' (repeatable)' -r
complete -c probe-http -s d -l header-string -d 'Text the response headers must contain (check_http -d)' -r
complete -c probe-http -s w -l warning -d 'Response time warning range, seconds (Nagios range syntax)' -r
complete -c probe-http -s c -l critical -d 'Response time critical range, seconds (Nagios range syntax)' -r
complete -c probe-http -s C -l certificate -d 'Certificate days left: WARN[,CRIT]. As check_http, only the certificate is judged unless --continue-after-certificate' -r
complete -c probe-http -s m -l pagesize -d 'Page size bounds in bytes, MIN[:MAX]; outside is WARNING (check_http -m)' -r
complete -c probe-http -s f -l onredirect -d 'What a redirect means: ok, warning, critical, or follow it' -r -f -a "ok\t'Report the redirect itself as OK (check_http\'s default)'
warning\t'Report a redirect as WARNING'
critical\t'Report a redirect as CRITICAL'
follow\t'Follow it (up to --max-redirects) and check where it leads'"
complete -c probe-http -l max-redirs -l max-redirects -d 'Most redirects to follow with -f follow' -r
complete -c probe-http -l keep-auth-on-redirect -d 'With -f follow, still send the credentials (Authorization, X-Auth-Token, the Keystone token, headers named by --secret-header) on a redirect to HOST (repeatable). By default they go only to the scheme, host and port of the URL given, as curl does' -r
complete -c probe-http -l secret-header -d 'A -k header that carries a credential (repeatable): it is not sent on a redirect to another origin, and its value never appears in any output. Authorization, Proxy-Authorization, Cookie, X-Auth-Token and other well-known credential headers are treated so without it' -r
complete -c probe-http -l ca-file -d 'Trust the CA certificates in FILE (PEM) instead of the system\'s' -r -F
complete -c probe-http -s J -l client-cert -d 'Client certificate (PEM) for mutual TLS' -r -F
complete -c probe-http -s K -l client-key -l private-key -d 'Private key (PEM) of the client certificate' -r -F
complete -c probe-http -l sni -d 'Server name to send in TLS SNI and verify [default: the host]. Given with no value (check_http\'s --sni) it changes nothing: SNI is always sent' -r
complete -c probe-http -l connect-to -d 'Connect to IP for HOST without resolving it: HOST:IP (repeatable)' -r
complete -c probe-http -l tls-min -d 'Lowest TLS version to accept' -r -f -a "1.2\t'TLS 1.2 or newer'
1.3\t'TLS 1.3 only'"
complete -c probe-http -l proxy -d 'Proxy URL (http://host:port) [default: from http_proxy/https_proxy/ALL_PROXY, honouring NO_PROXY]' -r
complete -c probe-http -l max-body -d 'Most body bytes to read; a larger body is CRITICAL (e.g. 512K, 16M)' -r
complete -c probe-http -l auth -d 'Authentication: none, basic (with -a), or keystone (a token from --os-cloud or the OS_* variables, sent as X-Auth-Token)' -r -f -a "none\t'No authentication (or Basic, when -a is given)'
basic\t'Basic authentication from -a/--auth-file'
keystone\t'A Keystone token as X-Auth-Token'"
complete -c probe-http -l os-cloud -d 'The cloud in clouds.yaml (./, ~/.config/openstack/, /etc/openstack/; secure.yaml merged) [default: OS_CLOUD, else the OS_* variables]' -r
complete -c probe-http -l os-interface -d 'Endpoint interface: public, internal or admin [default: the cloud\'s, else public]' -r
complete -c probe-http -l os-region -d 'Region for the catalog [default: the cloud\'s, or OS_REGION_NAME]' -r
complete -c probe-http -l os-endpoint-override -d 'Use this URL for a service type instead of the catalog\'s: TYPE=URL, e.g. compute=https://nova.internal:8774/v2.1 (repeatable)' -r
complete -c probe-http -l os-service -d 'Probe this service type\'s endpoint from the catalog (identity, compute, network, ...)' -r
complete -c probe-http -l os-microversion -d 'Ask for an API microversion: SERVICE_TYPE=VERSION, e.g. compute=2.53 (sends OpenStack-API-Version and, for Nova, X-OpenStack-Nova-API-Version)' -r
complete -c probe-http -l targets -d 'Probe every target of a TOML targets file ([defaults] and [[target]] tables whose keys are these long options, plus name, url, labels, timeout, enabled). Probe options on the command line apply to every target, over the file\'s own. With --every, the file is read again when it changes (a broken edit keeps the last good one and is reported UNKNOWN)' -r -F
complete -c probe-http -l targets-csv -d 'Probe every target of a CSV file: a header row with name, url and any long options' -r -F
complete -c probe-http -l targets-skypunch -d 'Probe the targets of Skypunch\'s SQL (data.sql, or a mysqldump of its database): the INSERT INTO targets rows' -r -F
complete -c probe-http -l only -d 'Probe only this target of the file, even if disabled, and print its trace (repeatable)' -r
complete -c probe-http -l concurrency -d 'Targets probed at once' -r
complete -c probe-http -l state -d 'Keep per-target counters here (pass/fail, 2xx..5xx, network failures, consecutive failures, last failing trace); locked and written atomically' -r -F
complete -c probe-http -l show -d 'Show one target\'s counters and last failing trace from --state, and exit' -r
complete -c probe-http -l disable -d 'Stop probing NAME (kept in --state; the targets file is not edited)' -r
complete -c probe-http -l enable -d 'Probe NAME again after --disable' -r
complete -c probe-http -s t -l timeout -d 'Deadline for the whole run: a number of seconds or a duration (500ms, 1m). Work not finished by then is reported in the --timeout-state [default: 10 s; watch-procs with --config: 60 s]' -r
complete -c probe-http -l timeout-state -d 'State reported for work cut off by the deadline' -r
complete -c probe-http -l label -d 'Add a label to every record (repeatable), e.g. --label az=zone-a' -r
complete -c probe-http -l format -d 'Output format [default: table on a terminal, jsonl otherwise]' -r -f -a "jsonl\t'One JSON record per line (the default in a pipe)'
nagios\t'Nagios plugin output: status line, long output, performance data'
nagios-line\t'The Nagios status line and its perfdata only, no long output: for Sensu Go\'s nagios_perfdata, which reads every word after the first | of the whole output as a metric'
table\t'A table for people (the default on a terminal)'
csv\t'CSV with a header row'
prometheus\t'Prometheus text exposition (for node_exporter\'s textfile collector)'"
complete -c probe-http -l output -d 'Write the output to FILE atomically (temporary file + rename) instead of stdout; rewritten whole each round, fit for node_exporter\'s textfile collector' -r -F
complete -c probe-http -l every -d 'Repeat the run every DURATION and keep streaming records (default: run once)' -r
complete -c probe-http -l count -d 'With --every: stop after N rounds' -r
complete -c probe-http -l hostname -d 'Name of this machine in records [default: the system host name]' -r
complete -c probe-http -s S -l ssl -d 'Use TLS (https)'
complete -c probe-http -l invert-regex -d 'The regex must NOT match'
complete -c probe-http -l continue-after-certificate -d 'With -C: judge the HTTP response too'
complete -c probe-http -l insecure -d 'Do not verify the server certificate (expiry is still reported)'
complete -c probe-http -l no-tls-resume -d 'A full TLS handshake on every connection. By default a connection resumes the TLS session of an earlier one in the same round to the same host, port and address, whose full handshake verified the certificate; the next round starts over'
complete -c probe-http -s 4 -d 'Use IPv4 only'
complete -c probe-http -s 6 -d 'Use IPv6 only'
complete -c probe-http -l no-proxy -d 'Ignore proxy environment variables'
complete -c probe-http -l no-token-cache -d 'Do not cache the token (by default it is kept, readable only by this user, until shortly before it expires)'
complete -c probe-http -l os-endpoints -d 'Probe every endpoint in the catalog at once: the quickest health sweep of a cloud'
complete -c probe-http -l list -d 'List the targets with their counters from --state, and exit'
complete -c probe-http -s v -l verbose -d 'Print each record\'s trace to stderr (-vv adds its details)'
complete -c probe-http -s h -l help -d 'Print help (see more with \'--help\')'
complete -c probe-http -s V -l version -d 'Print version'
