_evacuate() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="evacuate"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        evacuate)
            opts="-t -v -h -V --execute --state --probe --service-down-time --fence --fence-status --fence-off --fence-timeout --no-fence --i-understand-unfenced --max-hosts --max-hosts-per-zone --max-hosts-per-aggregate --window --cooldown --max-down-percent --tagged --tag-sources --error-instances --target-host --reserved --recovery --priority-key --stop-evacuated --concurrency --stagger --instance-timeout --retries --reenable --os-cloud --os-interface --os-region --os-endpoint-override --no-token-cache --timeout --timeout-state --verbose --label --format --output --every --count --hostname --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --state)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --probe)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --service-down-time)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --fence)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --fence-status)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --fence-off)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --fence-timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-hosts)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-hosts-per-zone)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-hosts-per-aggregate)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --window)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --cooldown)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-down-percent)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --tagged)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --tag-sources)
                    COMPREPLY=($(compgen -W "metadata flavor image" -- "${cur}"))
                    return 0
                    ;;
                --error-instances)
                    COMPREPLY=($(compgen -W "evacuate skip" -- "${cur}"))
                    return 0
                    ;;
                --target-host)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --reserved)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --recovery)
                    COMPREPLY=($(compgen -W "auto reserved-host auto-priority rh-priority" -- "${cur}"))
                    return 0
                    ;;
                --priority-key)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --concurrency)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stagger)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --instance-timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --retries)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --reenable)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --os-cloud)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --os-interface)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --os-region)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --os-endpoint-override)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -t)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --timeout-state)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --label)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --format)
                    COMPREPLY=($(compgen -W "jsonl nagios nagios-line table csv prometheus" -- "${cur}"))
                    return 0
                    ;;
                --output)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --every)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --count)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --hostname)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _evacuate -o nosort -o bashdefault -o default evacuate
else
    complete -F _evacuate -o bashdefault -o default evacuate
fi
