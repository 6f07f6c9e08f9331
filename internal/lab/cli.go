package lab

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Texts the lab's CLI prints outside any command's own format.
const (
	notRunningText = "Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)\n"
	versionText    = "pbxfleet lab (Asterisk 20.20.1 CLI format)\n"
)

// Run is `asterisk -rx '<command>'` on this host: it returns what Asterisk 20.20.1
// would print and the exit status of `asterisk -rx` — 1 only when Asterisk is not
// running (not started, closed, FaultStopped), 0 for everything else including
// unknown and failed commands (docs/asterisk.md#reloads-and-cli-replies). err is non-nil only when ctx ended.
func (h *Host) Run(ctx context.Context, command string) (stdout string, exitCode int, err error) {
	if err := ctx.Err(); err != nil {
		return "", 0, fmt.Errorf("run %q on %s: %w", command, h.cfg.Name, err)
	}
	run, fault, state := h.snapshot()
	if state != stateStarted || fault == FaultStopped {
		return notRunningText, 1, nil
	}
	args := strings.Fields(command)
	line := strings.Join(args, " ")
	out, ok := h.command(run, fault, args, line)
	if !ok {
		return fmt.Sprintf("No such command '%s' (type 'core show help %s' for other possible commands)\n", line, line), 0, nil
	}
	return out, 0, nil
}

// failed is what the CLI appends when a command's handler returns CLI_FAILURE.
func failed(out, line string) string {
	return out + fmt.Sprintf("Command '%s' failed.\n", line)
}

// command dispatches one CLI command; ok is false when no such command exists on
// this role (chan_sip commands exist only on the PBX, res_pjsip ones only on OML).
func (h *Host) command(run running, fault Fault, a []string, line string) (string, bool) {
	is := func(words ...string) bool {
		if len(a) < len(words) {
			return false
		}
		for i, w := range words {
			if a[i] != w {
				return false
			}
		}
		return true
	}
	pbx := h.cfg.Role == RolePBX
	switch {
	case is("core", "show", "version") && len(a) == 3:
		return versionText, true

	case pbx && is("sip", "show", "peers") && len(a) == 3:
		return formatSIPPeers(sipOrEmpty(run.sip), h.states()), true
	case pbx && is("sip", "show", "peer") && len(a) >= 4:
		return formatSIPPeer(sipOrEmpty(run.sip), a[3], h.states()), true
	case pbx && is("sip", "qualify", "peer") && len(a) >= 4:
		if _, ok := sipOrEmpty(run.sip).peers[a[3]]; !ok {
			return fmt.Sprintf("Peer '%s' not found\n", a[3]), true
		}
		h.forceQualify([]string{a[3]})
		return "", true
	case pbx && is("sip", "reload") && len(a) == 2:
		// chan_sip only schedules the reload (its monitor thread does it), so
		// the command returns before the new peers exist: with 3,000 peers
		// real Asterisk took 0.39-0.49 s.
		h.wg.Add(1)
		h.reloading.Add(1)
		go func() {
			defer h.wg.Done()
			defer h.reloading.Done()
			select {
			case <-time.After(h.cfg.SIPReloadLag):
			case <-h.lifeCtx.Done():
				return
			}
			h.reloadMu.Lock()
			defer h.reloadMu.Unlock()
			h.reloadSIP(fault)
		}()
		return "", true

	case !pbx && is("pjsip", "show", "endpoints") && len(a) == 3:
		return formatPJSIPEndpoints(pjOrEmpty(run.pj), h.states()), true
	case !pbx && is("pjsip", "show", "endpoint") && len(a) == 4:
		return formatPJSIPEndpoint(pjOrEmpty(run.pj), a[3], h.states()), true
	case !pbx && is("pjsip", "qualify") && len(a) == 3:
		return h.pjsipQualify(pjOrEmpty(run.pj), a[2], line)

	case is("module", "reload") && len(a) == 3:
		return h.moduleReload(fault, a[2]), true
	case is("dialplan", "reload") && len(a) == 2:
		h.reloadDialplan(fault)
		return "Dialplan reloaded.\n", true
	case is("dialplan", "show") && len(a) <= 3:
		arg := ""
		if len(a) == 3 {
			arg = a[2]
		}
		dp := run.dp
		if dp == nil {
			dp = &dialplan{contexts: map[string]*dpContext{}}
		}
		out, ok := formatDialplanShow(dp, arg)
		if !ok {
			return failed(out, line), true
		}
		return out, true

	case is("database", "get") && len(a) == 4:
		if v, ok := h.dbGet(a[2], a[3]); ok {
			return "Value: " + v + "\n", true
		}
		return "Database entry not found.\n", true
	case is("database", "put") && len(a) >= 5:
		h.dbPut(a[2], a[3], strings.Join(a[4:], " "))
		return "Updated database successfully\n", true
	case is("database", "del") && len(a) == 4:
		if h.dbDel(a[2], a[3]) {
			return "Database entry removed.\n", true
		}
		return "Database entry does not exist.\n", true

	case is("channel", "originate") && len(a) >= 5:
		h.originate(a[2:])
		return "", true
	}
	return "", false
}

// pjsipQualify is `pjsip qualify <endpoint>` (res_pjsip pjsip_options.c cli_qualify).
func (h *Host) pjsipQualify(pc *pjsipConfig, name, line string) (string, bool) {
	ep := pc.endpoints[name]
	if ep == nil {
		return failed(fmt.Sprintf("Unable to retrieve endpoint %s\n", name), line), true
	}
	if !ep.hasAOR {
		return failed(fmt.Sprintf("No AORs configured for endpoint '%s'\n", name), line), true
	}
	out := ""
	if ep.qualifyFreq > 0 {
		out = fmt.Sprintf("Qualifying AOR '%s' on endpoint '%s'\n", ep.name, ep.name)
		keys := make([]string, 0, len(ep.contacts))
		for _, c := range ep.contacts {
			keys = append(keys, ep.contactKey(c))
		}
		h.forceQualify(keys)
	}
	return out, true
}

// moduleReload is `module reload <module>` for the modules the lab models.
func (h *Host) moduleReload(fault Fault, module string) string {
	name := strings.TrimSuffix(module, ".so")
	switch {
	case (name == "res_pjsip" || name == "res_pjsip_config_wizard") && h.cfg.Role == RoleOML:
		h.reloadPJSIP(fault)
	case name == "chan_sip" && h.cfg.Role == RolePBX:
		h.reloadSIP(fault)
	case name == "pbx_config":
		h.reloadDialplan(fault)
	default:
		// Modules the lab does not model are not loaded in it.
		return fmt.Sprintf("No such module '%s'\n", module)
	}
	return fmt.Sprintf("Module '%s' reloaded successfully.\n", module)
}

// reloadSIP is `sip reload`: sip.conf is read again; a file that fails to parse
// keeps the old configuration (and only reaches the log). Listeners stay bound.
func (h *Host) reloadSIP(fault Fault) {
	if fault == FaultStale {
		return
	}
	sc, warnings, err := loadSIP(h.cfg.ConfigDir, h.addr)
	h.logWarnings("sip.conf", warnings)
	if err != nil {
		h.log.Error("chan_sip: sip reload failed, keeping the running configuration", "error", err)
		return
	}
	h.mu.Lock()
	if h.run.sip != nil {
		// The listener that is bound stays what it was.
		sc.bind = h.run.sip.bind
	}
	h.run.sip = sc
	h.resetTargetsLocked()
	h.mu.Unlock()
	h.poke()
}

// reloadPJSIP is `module reload res_pjsip.so`. Transports are not re-bound (res_pjsip
// does not reload transports by default).
func (h *Host) reloadPJSIP(fault Fault) {
	if fault == FaultStale {
		return
	}
	pc, warnings, err := loadPJSIP(h.cfg.ConfigDir, h.addr)
	h.logWarnings("pjsip", warnings)
	if err != nil {
		h.log.Error("res_pjsip: reload failed, keeping the running configuration", "error", err)
		return
	}
	h.mu.Lock()
	if h.run.pj != nil {
		// The transports that are bound stay what they were.
		pc.transports = h.run.pj.transports
	}
	h.run.pj = pc
	h.resetTargetsLocked()
	h.mu.Unlock()
	h.poke()
}

// reloadDialplan is `dialplan reload`; it prints "Dialplan reloaded." even when the
// file fails to parse, and then keeps the old dialplan.
func (h *Host) reloadDialplan(fault Fault) {
	if fault == FaultStale {
		return
	}
	dp, warnings, err := loadDialplan(h.cfg.ConfigDir)
	h.logWarnings("extensions.conf", warnings)
	if err != nil {
		h.log.Error("pbx_config: dialplan reload failed, keeping the running dialplan", "error", err)
		return
	}
	h.mu.Lock()
	h.run.dp = dp
	h.mu.Unlock()
}

func sipOrEmpty(sc *sipConfig) *sipConfig {
	if sc == nil {
		return &sipConfig{peers: map[string]*sipPeer{}}
	}
	return sc
}

func pjOrEmpty(pc *pjsipConfig) *pjsipConfig {
	if pc == nil {
		return &pjsipConfig{endpoints: map[string]*pjEndpoint{}}
	}
	return pc
}
