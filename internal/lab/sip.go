package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/icholy/digest"
)

// Timing and identity of the lab's SIP.
const (
	ackWait   = 5 * time.Second // an answered incoming call waits this long for ACK
	byeWait   = 2 * time.Second // a BYE waits this long for its 200
	userAgent = "pbxfleet-lab"
)

// sipStack is one host's SIP user agent (sipgo transport + transaction layers) and
// its UDP listeners.
type sipStack struct {
	ua    *sipgo.UserAgent
	conns []*net.UDPConn
	wg    sync.WaitGroup
	// users counts the requests sending through ua (stackFrom): its user
	// agent closes only after them. A request still sending once the
	// listeners closed makes sipgo open a socket of its own, and only the
	// user agent's close shuts that one.
	users sync.WaitGroup
}

// startSIP binds every listener and serves it; on failure it releases what it
// opened.
func (h *Host) startSIP(binds []netip.AddrPort) (*sipStack, error) {
	lg := h.log.With("component", "sipgo")
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent(userAgent),
		sipgo.WithUserAgentHostname(h.addr.String()),
		sipgo.WithUserAgentTransportLayerOptions(
			sip.WithTransportLayerLogger(lg),
			// Faults act below SIP parsing: a stopped or SIP-dropped host is silent,
			// not even "100 Trying" leaves it.
			sip.WithTransportLayerReadFilter(h.readFilter),
		),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(lg),
			sip.WithTransactionLayerUnhandledResponseHandler(func(*sip.Response) {}),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("sip user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(lg))
	if err != nil {
		_ = ua.Close()
		return nil, fmt.Errorf("sip server: %w", err)
	}
	srv.OnOptions(h.onOptions)
	srv.OnInvite(h.onInvite)
	srv.OnAck(h.onAck)
	srv.OnBye(h.onBye)
	srv.OnCancel(h.onStrayCancel)
	s := &sipStack{ua: ua}
	for _, b := range binds {
		conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(b))
		if err != nil {
			_ = s.close()
			return nil, fmt.Errorf("bind udp %s: %w", b, err)
		}
		s.conns = append(s.conns, conn)
	}
	for _, c := range s.conns {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = srv.ServeUDP(c)
		}()
	}
	// ServeUDP registers its socket with the transport layer from its goroutine; a
	// request sent before that would make sipgo try to bind the address again.
	deadline := time.Now().Add(5 * time.Second)
	for _, b := range binds {
		for {
			if c, err := ua.TransportLayer().GetConnection("udp", b.String()); err == nil && c != nil {
				_, _ = c.TryClose()
				break
			}
			if time.Now().After(deadline) {
				_ = s.close()
				return nil, fmt.Errorf("serve udp %s: listener did not come up", b)
			}
			runtime.Gosched()
		}
	}
	return s, nil
}

// close stops the listeners and the user agent and waits for the serve loops
// and the requests still using it.
func (s *sipStack) close() error {
	err := s.closeListeners()
	s.users.Wait()
	return errors.Join(err, s.ua.Close())
}

// closeListeners stops the listeners and waits for their serve loops; the user
// agent stays open for the requests still using it.
func (s *sipStack) closeListeners() error {
	var errs []error
	for _, c := range s.conns {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

// readFilter drops every datagram while the host is silent.
func (h *Host) readFilter(_ sip.TransportReadProps, data []byte) ([]byte, error) {
	if h.silent() {
		return nil, nil
	}
	return data, nil
}

// stackFrom returns the SIP stack when local is one of its bound listeners, so a
// request never makes sipgo open a socket of its own, and the release to call
// once the request is done with it (the stack's user agent waits for that).
func (h *Host) stackFrom(local netip.AddrPort) (*sipStack, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sip == nil || !containsAddrPort(h.binds, local) {
		return nil, func() {}
	}
	s := h.sip
	s.users.Add(1)
	return s, s.users.Done
}

// dialog lets in-dialog requests (ACK, BYE) find the call they belong to, by
// Call-ID and the tag this host put in the dialog.
type dialog struct {
	ack     chan struct{}
	bye     chan struct{}
	ackOnce sync.Once
	byeOnce sync.Once
	// onBye runs when the far end hangs up (ends an incoming channel); set at
	// creation, before the dialog is published.
	onBye func()
}

func dialogKey(callID, localTag string) string { return callID + "|" + localTag }

// addDialog registers a dialog; onBye (may be nil) runs when the far end hangs up.
func (h *Host) addDialog(callID, localTag string, onBye func()) *dialog {
	d := &dialog{ack: make(chan struct{}), bye: make(chan struct{}), onBye: onBye}
	h.mu.Lock()
	h.dialogs[dialogKey(callID, localTag)] = d
	h.mu.Unlock()
	return d
}

func (h *Host) removeDialog(callID, localTag string) {
	h.mu.Lock()
	delete(h.dialogs, dialogKey(callID, localTag))
	h.mu.Unlock()
}

func (h *Host) findDialog(req *sip.Request) *dialog {
	cid, to := req.CallID(), req.To()
	if cid == nil || to == nil {
		return nil
	}
	tag, _ := to.Params.Get("tag")
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dialogs[dialogKey(cid.Value(), tag)]
}

// sipReasons are the reason phrases the lab sends.
func sipReason(code int) string {
	switch code {
	case 200:
		return "OK"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 410:
		return "Gone"
	case 480:
		return "Temporarily Unavailable"
	case 481:
		return "Call/Transaction Does Not Exist"
	case 484:
		return "Address Incomplete"
	case 486:
		return "Busy Here"
	case 488:
		return "Not Acceptable Here"
	case 500:
		return "Server Internal Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 603:
		return "Decline"
	}
	return "Error"
}

// respond sends a final response built from req, with the Server header and extras.
func (h *Host) respond(tx sip.ServerTransaction, req *sip.Request, code int, toTag string, extra ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, sipReason(code), nil)
	if toTag != "" {
		if to := res.To(); to != nil {
			to.Params.Add("tag", toTag)
		}
	}
	res.AppendHeader(sip.NewHeader("Server", userAgent))
	for _, x := range extra {
		res.AppendHeader(x)
	}
	if err := tx.Respond(res); err != nil {
		h.log.Debug("respond failed", "code", code, "error", err)
	}
}

// requestCred parses the Authorization header of req, if any.
func (h *Host) requestCred(req *sip.Request) credential {
	a := req.GetHeader("Authorization")
	if a == nil {
		return nil
	}
	c, err := digest.ParseCredentials(a.Value())
	if err != nil {
		return nil
	}
	return digestCred{c: c, method: string(req.Method), fresh: h.nonceFresh(c.Nonce)}
}

func fromUserOf(req *sip.Request) string {
	if f := req.From(); f != nil {
		return f.Address.User
	}
	return ""
}

// onOptions answers OPTIONS like the role's channel driver: res_pjsip challenges
// (401) any request it cannot authenticate; chan_sip looks the Request-URI user
// (or "s") up in its general context and says 404 when it is not there (see the
// *_log_call_* captures). Any of these replies makes the far qualify succeed.
func (h *Host) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if !h.enter() {
		return
	}
	defer h.leave()
	if h.silent() {
		return
	}
	run, _, _ := h.snapshot()
	allow := sip.NewHeader("Allow", "INVITE, ACK, CANCEL, OPTIONS, BYE")
	if h.cfg.Role == RoleOML {
		src, _ := netip.ParseAddrPort(req.Source())
		adm := admitPJSIP(run.pj, src, fromUserOf(req), h.requestCred(req))
		if !adm.ok {
			h.respond(tx, req, 401, "", sip.NewHeader("WWW-Authenticate", h.challenge("asterisk")))
			return
		}
		h.respond(tx, req, 200, "", allow, sip.NewHeader("Accept", "application/sdp"))
		return
	}
	exten := req.Recipient.User
	if exten == "" {
		exten = "s"
	}
	context := "default"
	if run.sip != nil {
		context = run.sip.context
	}
	if run.dp != nil {
		if e, _ := run.dp.find(context, exten); e != nil {
			h.respond(tx, req, 200, "", allow, sip.NewHeader("Accept", "application/sdp"))
			return
		}
	}
	h.respond(tx, req, 404, "", allow, sip.NewHeader("Accept", "application/sdp"))
}

// onInvite admits (or challenges) an incoming call, checks codecs and the
// extension, then runs the dialplan on it.
func (h *Host) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if !h.enter() {
		return
	}
	defer h.leave()
	if h.silent() {
		return
	}
	run, _, _ := h.snapshot()
	src, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		h.respond(tx, req, 400, "")
		return
	}
	fromUser := fromUserOf(req)
	cred := h.requestCred(req)
	adm := h.admit(run, src, fromUser, cred)
	callID := ""
	if cid := req.CallID(); cid != nil {
		callID = cid.Value()
	}
	if !adm.ok {
		if cred != nil {
			h.authFailed(req, src, callID, adm.who)
		}
		if adm.code == 401 {
			realm := "asterisk"
			if run.sip != nil {
				realm = run.sip.realm
			}
			h.respond(tx, req, 401, "", sip.NewHeader("WWW-Authenticate", h.challenge(realm)))
			return
		}
		h.respond(tx, req, adm.code, "")
		return
	}
	if !codecsIntersect(sdpCodecs(req.Body()), adm.codecs) {
		h.log.Info("no compatible codecs", "from", adm.who, "allowed", codecList(adm.codecs))
		h.respond(tx, req, 488, "")
		return
	}
	exten := req.Recipient.User
	if exten == "" {
		exten = "s"
	}
	if run.dp == nil {
		h.respond(tx, req, 404, "")
		return
	}
	if e, _ := run.dp.find(adm.context, exten); e == nil {
		h.log.Info(fmt.Sprintf("Call from '%s' (%s) to extension '%s' rejected because extension not found in context '%s'.",
			adm.who, src, exten, adm.context))
		h.respond(tx, req, 404, "")
		return
	}
	local := h.localOf(req)
	toTag := sip.GenerateTagN(16)
	h.mu.Lock()
	h.chanSeq++
	seq := h.chanSeq
	h.mu.Unlock()
	tech := "SIP"
	if h.cfg.Role == RoleOML {
		tech = "PJSIP"
	}
	ops := &sipIncoming{h: h, req: req, tx: tx, local: local, src: src, toTag: toTag, exten: exten}
	ch := h.newChannel(fmt.Sprintf("%s/%s-%08x", tech, adm.who, seq), adm.context, exten, ops)
	ops.dlg = h.addDialog(callID, toTag, ch.end)
	defer h.removeDialog(callID, toTag)
	tx.OnCancel(func(*sip.Request) { ch.end() })
	h.runChannel(ch)
}

// localOf is the listener an incoming request was sent to (its Request-URI).
func (h *Host) localOf(req *sip.Request) netip.AddrPort {
	h.mu.Lock()
	binds := h.binds
	h.mu.Unlock()
	if ip, err := netip.ParseAddr(req.Recipient.Host); err == nil {
		port := req.Recipient.Port
		if port == 0 {
			port = sipDefaultPort
		}
		ap := netip.AddrPortFrom(ip, uint16(port))
		if containsAddrPort(binds, ap) {
			return ap
		}
	}
	if len(binds) > 0 {
		return binds[0]
	}
	return netip.AddrPortFrom(h.addr, sipDefaultPort)
}

// onAck completes an answered incoming call.
func (h *Host) onAck(req *sip.Request, _ sip.ServerTransaction) {
	if d := h.findDialog(req); d != nil {
		d.ackOnce.Do(func() { close(d.ack) })
	}
}

// onBye ends a call the far end hangs up.
func (h *Host) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if !h.enter() {
		return
	}
	defer h.leave()
	if h.silent() {
		return
	}
	d := h.findDialog(req)
	if d == nil {
		h.respond(tx, req, 481, "")
		return
	}
	d.byeOnce.Do(func() {
		close(d.bye)
		if d.onBye != nil {
			d.onBye()
		}
	})
	h.respond(tx, req, 200, "")
}

// onStrayCancel answers a CANCEL that matches no INVITE transaction.
func (h *Host) onStrayCancel(req *sip.Request, tx sip.ServerTransaction) {
	if !h.enter() {
		return
	}
	defer h.leave()
	if !h.silent() {
		h.respond(tx, req, 481, "")
	}
}

// sipIncoming is the channel of an incoming SIP call.
type sipIncoming struct {
	h        *Host
	req      *sip.Request
	tx       sip.ServerTransaction
	local    netip.AddrPort
	src      netip.AddrPort
	dlg      *dialog
	toTag    string
	exten    string
	answered bool
}

func (s *sipIncoming) answer(ctx context.Context) error {
	res := sip.NewResponseFromRequest(s.req, 200, "OK", sdpOffer(s.local.Addr(), nil))
	if to := res.To(); to != nil {
		to.Params.Add("tag", s.toTag)
	}
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: s.exten, Host: s.local.Addr().String(), Port: int(s.local.Port())}})
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.AppendHeader(sip.NewHeader("Server", userAgent))
	if err := s.tx.Respond(res); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	s.answered = true
	t := time.NewTimer(ackWait)
	defer t.Stop()
	select {
	case <-s.dlg.ack:
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	return nil
}

func (s *sipIncoming) hangup(cause int) {
	if !s.answered {
		s.h.respond(s.tx, s.req, causeToSIP(cause), s.toTag)
		return
	}
	select {
	case <-s.dlg.bye:
		return // the caller hung up first
	default:
	}
	if s.h.silent() {
		return
	}
	ruri := sip.Uri{Scheme: "sip", Host: s.src.Addr().String(), Port: int(s.src.Port())}
	if c := s.req.Contact(); c != nil {
		ruri = *c.Address.Clone()
	}
	req := newRequest(sip.BYE, ruri, s.local, s.src)
	from := &sip.FromHeader{Address: s.req.To().Address, Params: sip.NewParams()}
	from.Params.Add("tag", s.toTag)
	to := &sip.ToHeader{Address: s.req.From().Address, Params: s.req.From().Params.Clone()}
	req.AppendHeader(from)
	req.AppendHeader(to)
	cid := sip.CallIDHeader(s.req.CallID().Value())
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: uint32(time.Now().UnixNano()%30000) + 1, MethodName: sip.BYE})
	if _, err := s.h.sendAndWait(req, byeWait); err != nil {
		s.h.log.Debug("BYE got no answer", "error", err)
	}
}

// newRequest starts a request that leaves from local towards dest.
func newRequest(method sip.RequestMethod, ruri sip.Uri, local, dest netip.AddrPort) *sip.Request {
	req := sip.NewRequest(method, ruri)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP",
		Host: local.Addr().String(), Port: int(local.Port()), Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranch())
	req.AppendHeader(via)
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.NewHeader("User-Agent", userAgent))
	req.SetTransport("UDP")
	req.SetDestination(dest.String())
	req.Laddr = sip.Addr{IP: net.IP(local.Addr().AsSlice()), Port: int(local.Port())}
	return req
}

// newCallID returns a Call-ID for a dialog this host starts.
func newCallID(local netip.AddrPort) string {
	return strings.ReplaceAll(uuid.NewString(), "-", "") + "@" + local.String()
}

// sendAndWait sends a non-INVITE request and waits up to d for a final response.
func (h *Host) sendAndWait(req *sip.Request, d time.Duration) (*sip.Response, error) {
	local, _ := netip.ParseAddrPort(req.Laddr.String())
	s, release := h.stackFrom(local)
	defer release()
	if s == nil {
		return nil, fmt.Errorf("send %s from %s: %w", req.Method, local, ErrNotStarted)
	}
	ctx, cancel := context.WithTimeout(h.runContext(), d)
	defer cancel()
	tx, err := s.ua.TransactionLayer().Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("send %s: %w", req.Method, err)
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			return nil, fmt.Errorf("send %s: %w", req.Method, tx.Err())
		case <-ctx.Done():
			return nil, fmt.Errorf("send %s: %w", req.Method, ctx.Err())
		}
	}
}

// sendOptions qualifies one target: any reply within the qualify timeout counts.
func (h *Host) sendOptions(ctx context.Context, t qualifyState) (time.Duration, bool) {
	timer := time.NewTimer(h.cfg.QualifyTimeout)
	defer timer.Stop()
	s, release := h.stackFrom(t.local)
	defer release()
	if s == nil || h.silent() {
		// Our packets never leave: the qualify times out.
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
		return 0, false
	}
	var ruri sip.Uri
	if err := sip.ParseUri(t.ruri, &ruri); err != nil {
		return 0, false
	}
	req := newRequest(sip.OPTIONS, ruri, t.local, t.dest)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: t.fromUser, Host: t.local.Addr().String()}, Params: sip.NewParams()}
	if t.chanSIP {
		from.DisplayName = "asterisk"
	}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", Host: ruri.Host, Port: ruri.Port}, Params: sip.NewParams()})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: t.fromUser, Host: t.local.Addr().String(), Port: int(t.local.Port())}})
	cid := sip.CallIDHeader(newCallID(t.local))
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 102, MethodName: sip.OPTIONS})
	req.SetBody(nil)
	start := time.Now()
	tx, err := s.ua.TransactionLayer().Request(ctx, req)
	if err != nil {
		h.log.Debug("qualify send failed", "dest", t.dest.String(), "error", err)
		return 0, false
	}
	defer tx.Terminate()
	select {
	case <-tx.Responses():
		return time.Since(start), true
	case <-tx.Done():
	case <-timer.C:
	case <-ctx.Done():
	}
	return 0, false
}

// authFailed counts a request that carried credentials that did not match and
// logs it in the words of the role's channel driver (res_pjsip's
// pjsip_distributor.c, chan_sip's check_user_full), the lines fail2ban's
// asterisk filter reads (res_pjsip's) or does not (chan_sip's).
func (h *Host) authFailed(req *sip.Request, src netip.AddrPort, callID, matched string) {
	h.authFailures.Add(1)
	from := ""
	if f := req.From(); f != nil {
		from = fmt.Sprintf("%q <sip:%s@%s>", f.DisplayName, f.Address.User, f.Address.Host)
	}
	var line string
	if h.cfg.Role == RoleOML {
		line = fmt.Sprintf("Request 'INVITE' from '%s' failed for '%s' (callid: %s) - Failed to authenticate", from, src, callID)
	} else {
		tag := ""
		if f := req.From(); f != nil {
			if v, ok := f.Params.Get("tag"); ok {
				tag = ";tag=" + v
			}
		}
		line = fmt.Sprintf("Failed to authenticate device %s%s for INVITE, code = -1", from, tag)
	}
	h.log.Info(line, "matched", matched)
}

// AuthFailures returns how many requests with wrong credentials this host
// refused since it was made, as Asterisk logs them (one line each).
func (h *Host) AuthFailures() int { return int(h.authFailures.Load()) }
