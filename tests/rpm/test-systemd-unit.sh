#!/bin/bash
# test-systemd-unit.sh - vgpu-mediator.service against systemd 219, the
# systemd of XCP-ng 8.2 and 8.3 dom0 (CentOS 7): every directive must be
# one 219 knows, or 219 ignores it with a warning and the sandbox has a
# hole nobody sees.  No systemd 219 runs here, so its directive list is
# written below, each with the release that brought it (systemd's NEWS,
# "CHANGES WITH <n>"); the ones the unit must not use (newer than 219)
# are listed too, so a later edit cannot slip one in unnoticed.  Where a
# systemd-analyze exists, the unit is also verified by it (a newer
# systemd: syntax only).
set -u
. "$(dirname "$0")/../lib/check.sh"
TOP=$(cd "$(dirname "$0")/../.." && pwd)
UNIT=$TOP/mediator/vgpu-mediator.service
# vgpu-publish's units are held to the same systemd 219 lists.
ALL_UNITS="$UNIT $TOP/xapi-plugin/vgpu-publish.service $TOP/xapi-plugin/vgpu-publish.timer $TOP/xapi-plugin/vgpu-publish.path"

# [Unit], [Service] and [Install] directives of systemd 219 (those of
# systemd.unit(5), systemd.service(5), systemd.exec(5), systemd.kill(5)
# and systemd.resource-control(5) the daemon could want), and those of
# [Timer] (systemd.timer(5)) and [Path] (systemd.path(5)).
KNOWN_219="
Description Documentation Requires Requisite Wants BindsTo PartOf
Conflicts Before After OnFailure PropagatesReloadTo ReloadPropagatedFrom
JoinsNamespaceOf RequiresMountsFor DefaultDependencies StopWhenUnneeded
IgnoreOnIsolate JobTimeoutSec ConditionPathExists AssertPathExists
Type ExecStart ExecStartPre ExecStartPost ExecReload ExecStop ExecStopPost
RestartSec TimeoutStartSec TimeoutStopSec TimeoutSec WatchdogSec Restart
SuccessExitStatus RestartPreventExitStatus RestartForceExitStatus
PermissionsStartOnly RootDirectoryStartOnly RemainAfterExit GuessMainPID
PIDFile BusName NotifyAccess Sockets StartLimitInterval StartLimitBurst
StartLimitAction FailureAction RebootArgument
WorkingDirectory RootDirectory User Group SupplementaryGroups Nice
OOMScoreAdjust IOSchedulingClass IOSchedulingPriority CPUSchedulingPolicy
CPUSchedulingPriority CPUAffinity UMask Environment EnvironmentFile
StandardInput StandardOutput StandardError SyslogIdentifier SyslogFacility
SyslogLevel TimerSlackNSec LimitCPU LimitFSIZE LimitDATA LimitSTACK
LimitCORE LimitRSS LimitNOFILE LimitAS LimitNPROC LimitMEMLOCK LimitLOCKS
LimitSIGPENDING LimitMSGQUEUE LimitNICE LimitRTPRIO LimitRTTIME
CapabilityBoundingSet Capabilities SecureBits ReadWriteDirectories
ReadOnlyDirectories InaccessibleDirectories PrivateTmp PrivateDevices
PrivateNetwork ProtectSystem ProtectHome MountFlags NoNewPrivileges
SystemCallFilter SystemCallErrorNumber SystemCallArchitectures
RestrictAddressFamilies Personality RuntimeDirectory RuntimeDirectoryMode
KillMode KillSignal SendSIGKILL SendSIGHUP CPUAccounting CPUShares
MemoryAccounting MemoryLimit BlockIOAccounting DeviceAllow DevicePolicy
Slice Delegate
WantedBy RequiredBy Also Alias DefaultInstance
OnActiveSec OnBootSec OnStartupSec OnUnitActiveSec OnUnitInactiveSec
OnCalendar AccuracySec Unit Persistent WakeSystem
PathExists PathExistsGlob PathChanged PathModified DirectoryNotEmpty
MakeDirectory DirectoryMode
"
# Newer than 219: never in this unit.
AFTER_219="
AmbientCapabilities:229 ProtectKernelTunables:232 ProtectKernelModules:232
ProtectControlGroups:232 MemoryDenyWriteExecute:231 RestrictRealtime:231
RestrictNamespaces:233 LockPersonality:235 ReadWritePaths:231
ReadOnlyPaths:231 InaccessiblePaths:231 StartLimitIntervalSec:230
DynamicUser:232 RemoveIPC:232 PrivateUsers:232 ProtectKernelLogs:244
ProtectClock:245 ProtectHostname:242 RestrictSUIDSGID:242 ProcSubset:247
ProtectProc:247 StateDirectory:235 LogsDirectory:235 TasksMax:227
"

# shellcheck disable=SC2086
directives=$(sed -n 's/^\([A-Za-z]*\)=.*/\1/p' $ALL_UNITS | sort -u)
unknown=
for d in $directives; do
    grep -qw -- "$d" <<<"$KNOWN_219" || unknown+=" $d"
done
check "every directive of the units is one systemd 219 knows${unknown:+ (not:$unknown)}" \
    [ -z "$unknown" ]
newer=
for e in $AFTER_219; do
    grep -qx -- "${e%%:*}" <<<"$directives" && newer+=" $e"
done
check "no directive newer than 219${newer:+ (found:$newer)}" [ -z "$newer" ]
overlap=
for e in $AFTER_219; do
    grep -qw -- "${e%%:*}" <<<"$KNOWN_219" && overlap+=" ${e%%:*}"
done
check "control: the two lists share no name${overlap:+ ($overlap)}" [ -z "$overlap" ]

want() { grep -qx -- "$1" "$UNIT"; }
for line in NoNewPrivileges=yes ProtectSystem=full ProtectHome=yes PrivateTmp=yes \
    SystemCallArchitectures=native UMask=0077; do
    check "sandbox: $line" want "$line"
done
check "sandbox: address families limited to unix, inet, inet6, netlink" \
    want "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK"
no_private_devices() { ! grep -q '^PrivateDevices=yes' "$UNIT"; }
check "no PrivateDevices (the GPU's device nodes)" no_private_devices
check "restarts forever, the 219 way (StartLimitInterval in [Service])" \
    want "StartLimitInterval=0"

# A control: the check above must catch a post-219 directive.
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
sed 's/^ProtectHome=yes/ProtectHome=yes\nProtectKernelTunables=yes/' "$UNIT" >"$tmp"
caught=$(sed -n 's/^\([A-Za-z]*\)=.*/\1/p' "$tmp" | while read -r d; do
    grep -qw -- "$d" <<<"$KNOWN_219" || echo "$d"
done)
check "control: a post-219 directive is caught" [ "$caught" = ProtectKernelTunables ]

if command -v systemd-analyze >/dev/null 2>&1; then
    out=$(cd "$(dirname "$UNIT")" && systemd-analyze verify "$UNIT" 2>&1 |
        grep -v -e 'vgpu-mediator: command' -e 'Command /usr/sbin/vgpu-mediator' \
            -e 'is not executable' -e 'not found' -e 'xapi-domains' -e 'xenopsd' -e 'xenstored')
    check "systemd-analyze verify (systemd $(systemd-analyze --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')): no complaint${out:+: $out}" \
        [ -z "$out" ]
else
    echo "note: no systemd-analyze here; the unit's syntax is checked by the lists only"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
