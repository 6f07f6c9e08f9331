package lab

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"time"
)

// qualifyStatus is what the last qualify of a peer/contact found.
type qualifyStatus int

const (
	// qualifyPending: not qualified since the last (re)load: chan_sip UNKNOWN,
	// pjsip NonQual with the endpoint Unavailable (docs/asterisk.md#reloads-and-cli-replies).
	qualifyPending qualifyStatus = iota
	// qualifyUp: any reply came back, even 401/404 (docs/asterisk.md#how-the-two-sides-relate).
	qualifyUp
	// qualifyDown: no reply within the qualify timeout.
	qualifyDown
)

// qualifyState is one qualify target (a chan_sip peer or a pjsip contact) and the
// result of its last qualify.
type qualifyState struct {
	status   qualifyStatus
	rtt      time.Duration
	next     time.Time
	inflight bool
	gen      uint64
	// attempt numbers the qualifies of this target; a forced qualify abandons the
	// one in flight (chan_sip replaces the outstanding poke), whose result is dropped.
	attempt uint64

	chanSIP  bool
	dest     netip.AddrPort
	local    netip.AddrPort
	ruri     string
	fromUser string
	freq     time.Duration
}

// resetTargetsLocked rebuilds the qualify targets from the running configuration:
// after a (re)load every peer/contact starts over as pending. chan_sip pokes its
// peers right away; res_pjsip spreads the first qualify over the frequency, which
// is why OML showed NonQual for 54 s after a start (docs/asterisk.md#reloads-and-cli-replies).
func (h *Host) resetTargetsLocked() {
	h.gen++
	h.targets = map[string]*qualifyState{}
	now := time.Now()
	if sc := h.run.sip; sc != nil {
		for _, p := range sc.peers {
			if !p.qualify || !p.addr.IsValid() {
				continue
			}
			from := p.fromUser
			if from == "" {
				from = "asterisk"
			}
			h.targets[p.name] = &qualifyState{
				gen: h.gen, chanSIP: true, dest: p.addr, local: sc.bind, next: now,
				ruri: "sip:" + p.addr.Addr().String(), fromUser: from, freq: p.qualifyFreq,
			}
		}
	}
	if pj := h.run.pj; pj != nil {
		for _, e := range pj.endpoints {
			if e.qualifyFreq <= 0 {
				continue
			}
			local, ok := h.localFor(h.run, e.transport)
			if !ok {
				continue
			}
			for _, c := range e.contacts {
				if !c.addr.IsValid() {
					continue
				}
				first := time.Duration(rand.Int64N(int64(e.qualifyFreq)))
				h.targets[e.contactKey(c)] = &qualifyState{
					gen: h.gen, dest: c.addr, local: local, next: now.Add(first),
					ruri: c.uri, fromUser: e.fromUser, freq: e.qualifyFreq,
				}
			}
		}
	}
}

// states returns a copy of the qualify states for rendering.
func (h *Host) states() map[string]*qualifyState {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]*qualifyState, len(h.targets))
	for k, v := range h.targets {
		c := *v
		out[k] = &c
	}
	return out
}

// stateOf returns a copy of the qualify state of target name, or nil.
func (h *Host) stateOf(name string) *qualifyState {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.targets[name]
	if !ok {
		return nil
	}
	c := *st
	return &c
}

// poke wakes the qualify loop.
func (h *Host) poke() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// forceQualify makes the given targets due now (`sip qualify peer`, `pjsip qualify`).
func (h *Host) forceQualify(keys []string) {
	h.mu.Lock()
	now := time.Now()
	for _, k := range keys {
		if st := h.targets[k]; st != nil {
			st.attempt++
			st.inflight = false
			st.next = now
		}
	}
	h.mu.Unlock()
	h.poke()
}

// qualifyLoop is the host's one long-lived goroutine: it sleeps until the next
// qualify is due, or until poked, and starts the due ones.
func (h *Host) qualifyLoop() {
	defer h.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		t.Reset(h.dispatchQualifies(time.Now()))
		select {
		case <-h.lifeCtx.Done():
			return
		case <-h.kick:
		case <-t.C:
		}
	}
}

// dispatchQualifies starts every due qualify and returns how long to sleep.
func (h *Host) dispatchQualifies(now time.Time) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	wait := time.Hour
	if h.state != stateStarted || h.fault == FaultStopped {
		return wait
	}
	ctx := h.runCtx
	for key, st := range h.targets {
		if st.inflight {
			continue
		}
		if d := st.next.Sub(now); d > 0 {
			wait = min(wait, d)
			continue
		}
		st.inflight = true
		target := *st
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.qualifyOnce(ctx, key, target)
		}()
	}
	return wait
}

// qualifyOnce sends one OPTIONS (or, Instant, asks the Network) and records it.
func (h *Host) qualifyOnce(ctx context.Context, key string, target qualifyState) {
	var rtt time.Duration
	var up bool
	if h.cfg.Instant {
		up = !h.silent() && h.cfg.Network.reachable(target.dest)
	} else {
		rtt, up = h.sendOptions(ctx, target)
	}
	if ctx.Err() != nil {
		return // stopped or closed meanwhile: nothing to record
	}
	h.mu.Lock()
	if st := h.targets[key]; st != nil && st.gen == target.gen && st.attempt == target.attempt {
		st.inflight = false
		st.rtt = rtt
		st.status = qualifyDown
		next := st.freq
		if up {
			st.status = qualifyUp
		} else if st.chanSIP {
			// chan_sip retries an unreachable peer sooner (DEFAULT_FREQ_NOTOK).
			next = min(next, sipQualifyFreqNotOK)
		}
		st.next = time.Now().Add(next)
	}
	h.mu.Unlock()
	h.poke()
}
