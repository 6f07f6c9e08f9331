package lab

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// timerB bounds an INVITE nobody answers when Dial has no timeout (64*T1).
const timerB = 32 * time.Second

// dialResult is how one Dial ended.
type dialResult struct {
	status     string // DIALSTATUS
	cause      int    // HANGUPCAUSE
	answered   bool
	callerGone bool // the calling channel hung up (Local ;1 after its Wait)
}

// dialTarget is a resolved Dial destination.
type dialTarget struct {
	chanSIP  bool
	dest     netip.AddrPort
	local    netip.AddrPort
	ruri     sip.Uri
	fromName string
	fromUser string
	fromHost string
	authUser string
	authPass string
	hasAuth  bool
	codecs   []string
}

// resolveDial turns "SIP/peer/number", "SIP/number@peer", "PJSIP/number@endpoint"
// or "PJSIP/endpoint" into a target, or into the result Asterisk gives when it
// cannot even create the channel.
func (h *Host) resolveDial(run running, dest string) (dialTarget, *dialResult) {
	tech, rest, _ := strings.Cut(dest, "/")
	switch strings.ToUpper(tech) {
	case "SIP":
		if run.sip == nil {
			break
		}
		peerName, number, ok := strings.Cut(rest, "/")
		if !ok {
			if n, p, at := strings.Cut(rest, "@"); at {
				peerName, number = p, n
			}
		}
		p := run.sip.peers[peerName]
		if p == nil || !p.addr.IsValid() {
			// chan_sip treats an unknown peer as a host name it cannot resolve.
			return dialTarget{}, &dialResult{status: "CHANUNAVAIL", cause: causeUnregistered}
		}
		if p.qualify {
			// chan_sip dials a qualified peer only while it answers within
			// qualifymax: UNREACHABLE and LAGGED refuse the call at once
			// (cause 20), as real Asterisk 20.20.1 does.
			if st := h.stateOf(p.name); st != nil && (st.status == qualifyDown ||
				(st.status == qualifyUp && sipLastMS(st.rtt) > p.maxMS)) {
				h.log.Info("Unable to create channel of type 'SIP' (cause 20 - Subscriber absent)", "peer", p.name)
				return dialTarget{}, &dialResult{status: "CHANUNAVAIL", cause: causeUnregistered}
			}
		}
		user := p.defaultUser
		if user == "" {
			user = p.name
		}
		from := p.fromUser
		if from == "" {
			from = "anonymous"
		}
		return dialTarget{
			chanSIP:  true,
			dest:     p.addr,
			local:    run.sip.bind,
			ruri:     sip.Uri{Scheme: "sip", User: number, Host: p.addr.Addr().String(), Port: int(p.addr.Port())},
			fromName: "Anonymous", fromUser: from, fromHost: "anonymous.invalid",
			authUser: user, authPass: p.secret, hasAuth: p.secret != "",
			codecs: p.codecs,
		}, nil
	case "PJSIP":
		if run.pj == nil {
			break
		}
		number, epName, ok := strings.Cut(rest, "@")
		if !ok {
			number, epName = "", rest
		}
		ep := run.pj.endpoints[epName]
		if ep == nil {
			return dialTarget{}, &dialResult{status: "CHANUNAVAIL", cause: causeNoRouteDest}
		}
		var contact *pjContact
		for i := range ep.contacts {
			if ep.contacts[i].addr.IsValid() {
				contact = &ep.contacts[i]
				break
			}
		}
		local, haveLocal := h.localFor(run, ep.transport)
		if contact == nil || !haveLocal {
			return dialTarget{}, &dialResult{status: "CHANUNAVAIL", cause: causeNoRouteDest}
		}
		from := ep.fromUser
		if from == "" {
			from = "asterisk"
		}
		t := dialTarget{
			dest:     contact.addr,
			local:    local,
			ruri:     sip.Uri{Scheme: "sip", User: number, Host: contact.addr.Addr().String(), Port: int(contact.addr.Port())},
			fromUser: from, fromHost: local.Addr().String(),
			codecs: ep.allow,
		}
		if ep.outAuth != nil {
			t.authUser, t.authPass, t.hasAuth = ep.outAuth.user, ep.outAuth.password, true
		}
		return t, nil
	}
	// The channel driver is not loaded on this role (chan_sip on OML, res_pjsip on
	// the PBX): "No such channel type".
	return dialTarget{}, &dialResult{status: "CHANUNAVAIL", cause: causeChanNotImplmented}
}

// dial places the call of a Dial application and waits for its end.
func (h *Host) dial(ch *channel, dest string, timeout time.Duration) dialResult {
	run, _, _ := h.snapshot()
	t, early := h.resolveDial(run, dest)
	if early != nil {
		return *early
	}
	if timeout <= 0 {
		timeout = timerB
	}
	if h.cfg.Instant {
		return h.dialInstant(ch, t)
	}
	return h.dialSIP(ch, t, timeout)
}

// authOutcome applies the caller's rule to a 401: chan_sip retries with credentials
// up to three times and then gives up with CONGESTION/21 ("Failed to authenticate
// on INVITE"); res_pjsip answers one challenge and treats a second as the final
// 401: CHANUNAVAIL/21 (probe_call_matrix.md).
func authOutcome(t dialTarget, tries int) *dialResult {
	if t.chanSIP {
		if !t.hasAuth || tries >= sipMaxAuthTries {
			return &dialResult{status: "CONGESTION", cause: causeCallRejected}
		}
		return nil
	}
	if !t.hasAuth || tries >= 1 {
		return &dialResult{status: "CHANUNAVAIL", cause: causeCallRejected}
	}
	return nil
}

// failure maps a final SIP response to DIALSTATUS and HANGUPCAUSE: the cause is
// hangup_sip2cause's, the status app_dial's handle_cause (busy, congestion, or
// channel unavailable; a clearing cause means nobody answered).
func failure(code int) dialResult {
	cause := sipToCause(code)
	switch cause {
	case causeUserBusy:
		return dialResult{status: "BUSY", cause: cause}
	case causeCongestion:
		return dialResult{status: "CONGESTION", cause: cause}
	case causeNoAnswer, causeNormalClearing:
		return dialResult{status: "NOANSWER", cause: cause}
	}
	return dialResult{status: "CHANUNAVAIL", cause: cause}
}

// dialSIP runs the INVITE transaction(s) of one call over UDP. A far side that
// never replies ends in NOANSWER when the dial timeout passes, with cause 18 (no
// user responding) when nothing at all came back and 19 (no answer) after a
// provisional response; the lab's choice, documented in the package tests.
func (h *Host) dialSIP(ch *channel, t dialTarget, timeout time.Duration) dialResult {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	s, release := h.stackFrom(t.local)
	defer release()
	if s == nil || h.silent() {
		// Nothing leaves this host: the call rings out unheard.
		select {
		case <-deadline.C:
			return dialResult{status: "NOANSWER", cause: causeNoUserResponse}
		case <-ch.ctx.Done():
			return dialResult{status: "CANCEL", cause: causeNormalClearing, callerGone: true}
		}
	}
	callID := newCallID(t.local)
	fromTag := sip.GenerateTagN(16)
	dlg := h.addDialog(callID, fromTag, nil)
	defer h.removeDialog(callID, fromTag)
	cseq := uint32(102)
	authHeader := ""
	tries := 0
	provisional := false
	for {
		req := h.inviteRequest(t, callID, fromTag, cseq, authHeader)
		tx, err := s.ua.TransactionLayer().Request(ch.ctx, req)
		if err != nil {
			h.log.Warn("INVITE not sent", "dest", t.dest.String(), "error", err)
			return dialResult{status: "CHANUNAVAIL", cause: causeNoRouteDest}
		}
		var res *sip.Response
	wait:
		for {
			select {
			case r := <-tx.Responses():
				if r.IsProvisional() {
					provisional = true
					continue
				}
				res = r
				break wait
			case <-tx.Done():
				break wait
			case <-deadline.C:
				tx.Terminate()
				cause := causeNoUserResponse
				if provisional {
					h.cancel(req)
					cause = causeNoAnswer
				}
				return dialResult{status: "NOANSWER", cause: cause}
			case <-ch.ctx.Done():
				tx.Terminate()
				if provisional {
					h.cancel(req)
				}
				return dialResult{status: "CANCEL", cause: causeNormalClearing, callerGone: true}
			}
		}
		tx.Terminate()
		if res == nil {
			return dialResult{status: "NOANSWER", cause: causeNoUserResponse}
		}
		switch {
		case res.StatusCode == 401 || res.StatusCode == 407:
			if out := authOutcome(t, tries); out != nil {
				h.log.Info("Failed to authenticate on INVITE", "dest", t.dest.String(), "user", t.authUser)
				return *out
			}
			tries++
			hdr := res.GetHeader("WWW-Authenticate")
			if res.StatusCode == 407 {
				hdr = res.GetHeader("Proxy-Authenticate")
			}
			if hdr == nil {
				return failure(res.StatusCode)
			}
			chal, err := digest.ParseChallenge(hdr.Value())
			if err != nil {
				return failure(res.StatusCode)
			}
			cred, err := digest.Digest(chal, digest.Options{Method: "INVITE", URI: t.ruri.String(),
				Username: t.authUser, Password: t.authPass, Count: tries})
			if err != nil {
				return failure(res.StatusCode)
			}
			authHeader = cred.String()
			cseq++
			continue
		case res.IsSuccess():
			h.ack(t, req, res, cseq)
			if err := h.answer(ch); err != nil {
				h.bye(t, req, res, cseq+1)
				return dialResult{status: "ANSWER", cause: causeNormalClearing, answered: true, callerGone: true}
			}
			select {
			case <-dlg.bye:
				return dialResult{status: "ANSWER", cause: causeNormalClearing, answered: true}
			case <-ch.ctx.Done():
				h.bye(t, req, res, cseq+1)
				return dialResult{status: "ANSWER", cause: causeNormalClearing, answered: true, callerGone: true}
			}
		}
		return failure(res.StatusCode)
	}
}

// inviteRequest builds one INVITE of a call (the first, or a retry with credentials).
func (h *Host) inviteRequest(t dialTarget, callID, fromTag string, cseq uint32, authHeader string) *sip.Request {
	req := newRequest(sip.INVITE, t.ruri, t.local, t.dest)
	from := &sip.FromHeader{DisplayName: t.fromName,
		Address: sip.Uri{Scheme: "sip", User: t.fromUser, Host: t.fromHost}, Params: sip.NewParams()}
	from.Params.Add("tag", fromTag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: t.ruri, Params: sip.NewParams()})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: t.fromUser,
		Host: t.local.Addr().String(), Port: int(t.local.Port())}})
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.INVITE})
	if authHeader != "" {
		req.AppendHeader(sip.NewHeader("Authorization", authHeader))
	}
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(sdpOffer(t.local.Addr(), t.codecs))
	return req
}

// ack acknowledges a 2xx (a transaction of its own, sent by the caller itself).
func (h *Host) ack(t dialTarget, invite *sip.Request, res *sip.Response, cseq uint32) {
	s, release := h.stackFrom(t.local)
	defer release()
	if s == nil {
		return
	}
	ack := h.inDialog(sip.ACK, t, invite, res, cseq)
	if err := s.ua.TransportLayer().WriteMsg(ack); err != nil {
		h.log.Debug("ACK not sent", "error", err)
	}
}

// bye hangs up an answered outgoing call.
func (h *Host) bye(t dialTarget, invite *sip.Request, res *sip.Response, cseq uint32) {
	if h.silent() {
		return
	}
	if _, err := h.sendAndWait(h.inDialog(sip.BYE, t, invite, res, cseq), byeWait); err != nil {
		h.log.Debug("BYE got no answer", "error", err)
	}
}

// inDialog builds an ACK or BYE for the dialog the 2xx res established.
func (h *Host) inDialog(method sip.RequestMethod, t dialTarget, invite *sip.Request, res *sip.Response, cseq uint32) *sip.Request {
	ruri := t.ruri
	if c := res.Contact(); c != nil {
		ruri = *c.Address.Clone()
	}
	req := newRequest(method, ruri, t.local, t.dest)
	req.AppendHeader(sip.HeaderClone(invite.From()))
	req.AppendHeader(sip.HeaderClone(res.To()))
	cid := sip.CallIDHeader(invite.CallID().Value())
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	req.SetBody(nil)
	return req
}

// cancel sends CANCEL for a ringing INVITE.
func (h *Host) cancel(invite *sip.Request) {
	if h.silent() {
		return
	}
	req := sip.NewRequest(sip.CANCEL, invite.Recipient)
	req.AppendHeader(sip.HeaderClone(invite.Via()))
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.HeaderClone(invite.From()))
	req.AppendHeader(sip.HeaderClone(invite.To()))
	cid := sip.CallIDHeader(invite.CallID().Value())
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: invite.CSeq().SeqNo, MethodName: sip.CANCEL})
	req.SetBody(nil)
	req.SetTransport("UDP")
	req.SetDestination(invite.Destination())
	req.Laddr = invite.Laddr
	if _, err := h.sendAndWait(req, byeWait); err != nil {
		h.log.Debug("CANCEL got no answer", "error", err)
	}
}

// dialInstant computes the call with the far host's running configuration and no
// packets: the same admission (credentials, identify, codecs), the same extension
// lookup and the same far dialplan, with waits taking no time.
func (h *Host) dialInstant(ch *channel, t dialTarget) dialResult {
	if h.silent() || ch.depth >= maxInstantDepth {
		return dialResult{status: "NOANSWER", cause: causeNoUserResponse}
	}
	far := h.cfg.Network.lookup(t.dest)
	if far == nil || far.silent() {
		return dialResult{status: "NOANSWER", cause: causeNoUserResponse}
	}
	farRun, _, _ := far.snapshot()
	var cred credential
	tries := 0
	for {
		adm := far.admit(farRun, t.local, t.fromUser, cred)
		if !adm.ok {
			if adm.code != 401 {
				return failure(adm.code)
			}
			if out := authOutcome(t, tries); out != nil {
				return *out
			}
			tries++
			cred = plainCred{user: t.authUser, pass: t.authPass}
			continue
		}
		offer := make([]string, 0, len(t.codecs))
		for _, c := range t.codecs {
			for _, ac := range audioCodecs() {
				if ac.name == c {
					offer = append(offer, c)
				}
			}
		}
		if !codecsIntersect(offer, adm.codecs) {
			return failure(488)
		}
		code := far.answerInstant(farRun, adm, t.ruri.User, ch.depth+1)
		if code != 200 {
			return failure(code)
		}
		if err := h.answer(ch); err != nil {
			return dialResult{status: "ANSWER", cause: causeNormalClearing, answered: true, callerGone: true}
		}
		// The far dialplan already ran to its end: the far side hung up first.
		return dialResult{status: "ANSWER", cause: causeNormalClearing, answered: true}
	}
}

// instantIncoming is the far leg of an Instant-mode call.
type instantIncoming struct {
	answered bool
	code     int
}

func (i *instantIncoming) answer(context.Context) error {
	i.answered = true
	i.code = 200
	return nil
}

func (i *instantIncoming) hangup(cause int) {
	if !i.answered {
		i.code = causeToSIP(cause)
	}
}

// answerInstant runs this host's dialplan for an admitted Instant-mode call and
// returns the final SIP code the caller would have received.
func (h *Host) answerInstant(run running, adm admission, exten string, depth int) int {
	if exten == "" {
		exten = "s"
	}
	if run.dp == nil {
		return 404
	}
	if e, _ := run.dp.find(adm.context, exten); e == nil {
		return 404
	}
	ops := &instantIncoming{}
	ch := h.newChannel("PJSIP/"+adm.who, adm.context, exten, ops)
	if h.cfg.Role == RolePBX {
		ch.name = "SIP/" + adm.who
	}
	ch.instant = true
	ch.depth = depth
	h.runChannel(ch)
	return ops.code
}

// sipToCause is chan_sip's hangup_sip2cause.
func sipToCause(code int) int {
	switch code {
	case 401, 403, 407, 603:
		return causeCallRejected
	case 404, 485, 604:
		return causeUnallocated
	case 405, 411, 413, 414, 415, 481, 482, 487, 491, 493, 505:
		return causeInterworking
	case 408:
		return causeNoUserResponse
	case 409:
		return 41
	case 410:
		return 22
	case 420:
		return causeNoRouteDest
	case 480, 483:
		return causeNoAnswer
	case 484:
		return 28
	case 486, 600:
		return causeUserBusy
	case 488, 606:
		return 58
	case 500:
		return 38
	case 501:
		return 29
	case 502:
		return 27
	case 503:
		return causeCongestion
	case 504:
		return 102
	}
	switch {
	case code >= 400 && code < 500, code >= 600 && code < 700:
		return causeInterworking
	case code >= 500 && code < 600:
		return causeCongestion
	}
	return causeNormalClearing
}

// causeToSIP is hangup_cause2sip: the response an unanswered incoming call gets.
func causeToSIP(cause int) int {
	switch cause {
	case causeUnallocated, 2, causeNoRouteDest:
		return 404
	case causeCongestion, 42, causeChanNotImplmented:
		return 503
	case causeNoUserResponse:
		return 408
	case causeNoAnswer, causeUnregistered, 31:
		return 480
	case causeCallRejected:
		return 403
	case 22:
		return 410
	case 28:
		return 484
	case causeUserBusy:
		return 486
	case 38, causeInterworking:
		return 500
	case 29:
		return 501
	case 27:
		return 502
	case 58:
		return 488
	}
	return 603
}
