complete -c notify-history -l state -d 'notify\'s state file: the history is STATE.history.jsonl' -r -F
complete -c notify-history -l history -d 'The history file itself' -r -F
complete -c notify-history -l last -d 'Only the last N transitions' -r
complete -c notify-history -l format -d 'jsonl or table [default: table on a terminal, jsonl otherwise]' -r -f -a "jsonl\t''
table\t''"
complete -c notify-history -s h -l help -d 'Print help'
complete -c notify-history -s V -l version -d 'Print version'
