package lab

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Bounds that keep a lab dialplan from running away.
const (
	maxDialplanSteps  = 1000
	maxInstantDepth   = 8
	originateAnswerBy = 30 * time.Second // channel originate gives up unanswered calls
)

// Q.850 hangup causes the lab uses (include/asterisk/causes.h).
const (
	causeUnallocated       = 1
	causeNoRouteDest       = 3
	causeNormalClearing    = 16
	causeUserBusy          = 17
	causeNoUserResponse    = 18
	causeNoAnswer          = 19
	causeUnregistered      = 20
	causeCallRejected      = 21
	causeCongestion        = 34
	causeChanNotImplmented = 66
	causeInterworking      = 127
)

// chanOps is what differs between the channels a dialplan runs on.
type chanOps interface {
	// answer answers the channel: 200 OK on an incoming SIP call.
	answer(ctx context.Context) error
	// hangup releases the channel with cause: an unanswered incoming call gets the
	// SIP response for the cause, an answered one a BYE unless the far end hung up.
	hangup(cause int)
}

// channel is one call leg running dialplan.
type channel struct {
	name     string
	context  string
	exten    string
	prio     int
	vars     map[string]string
	cause    int
	answered bool
	// instant marks the far leg of an Instant-mode call: waits take no time.
	instant bool
	depth   int
	ctx     context.Context
	// end hangs the channel up from outside (caller hangup, BYE, CANCEL, stop).
	end      context.CancelFunc
	ops      chanOps
	onAnswer func()
	// stack holds the return addresses of Gosub; handlers the hangup handlers
	// pushed with Set(CHANNEL(hangup_handler_push)=context,exten,priority).
	stack    []dpAddr
	handlers []dpAddr
}

// dpAddr is a dialplan location.
type dpAddr struct {
	context, exten string
	prio           int
}

// newChannel makes a channel whose context ends with the host's current run.
func (h *Host) newChannel(name, dpContext, exten string, ops chanOps) *channel {
	ctx, end := context.WithCancel(h.runContext())
	return &channel{name: name, context: dpContext, exten: exten, prio: 1, vars: map[string]string{},
		ctx: ctx, end: end, ops: ops}
}

// step is what the interpreter does after an application.
type step int

const (
	stepNext step = iota
	stepStop
	stepJump
)

// runChannel executes the channel's dialplan until it hangs up, then releases it.
// Each step reads the current dialplan, so a `dialplan reload` mid-call takes
// effect at the next priority, as in Asterisk.
func (h *Host) runChannel(ch *channel) {
	defer ch.end()
	defer func() {
		cause := ch.cause
		if cause == 0 {
			cause = causeNormalClearing
		}
		ch.ops.hangup(cause)
	}()
	defer h.runHangupHandlers(ch)
	h.runSteps(ch, false)
}

// runHangupHandlers runs the channel's hangup handlers, last pushed first, each
// until it returns, as Asterisk does when the channel hangs up.
func (h *Host) runHangupHandlers(ch *channel) {
	for len(ch.handlers) > 0 {
		a := ch.handlers[len(ch.handlers)-1]
		ch.handlers = ch.handlers[:len(ch.handlers)-1]
		ch.context, ch.exten, ch.prio, ch.stack = a.context, a.exten, a.prio, nil
		h.runSteps(ch, true)
	}
}

// runSteps executes the dialplan from the channel's location until it stops;
// afterHangup runs it although the channel is gone (hangup handlers).
func (h *Host) runSteps(ch *channel, afterHangup bool) {
	for steps := 0; steps < maxDialplanSteps; steps++ {
		if ch.ctx.Err() != nil && !afterHangup {
			return
		}
		run, _, _ := h.snapshot()
		if run.dp == nil {
			return
		}
		e, _ := run.dp.find(ch.context, ch.exten)
		if e == nil {
			h.log.Warn("channel sent into invalid extension", "channel", ch.name, "exten", ch.exten, "context", ch.context)
			return
		}
		p := e.prio(ch.prio)
		if p == nil {
			// Auto fallthrough: Congestion()/Busy() per DIALSTATUS keep a cause Dial set.
			if ch.cause == 0 {
				switch ch.vars["DIALSTATUS"] {
				case "CONGESTION", "CHANUNAVAIL":
					ch.cause = causeCongestion
				case "BUSY":
					ch.cause = causeUserBusy
				}
			}
			return
		}
		data := h.substitute(ch, p.data)
		h.log.Debug("executing", "channel", ch.name, "at", fmt.Sprintf("%s@%s:%d", ch.exten, ch.context, ch.prio),
			"app", p.app, "data", data)
		switch h.exec(ch, e, p.app, data) {
		case stepStop:
			return
		case stepNext:
			ch.prio++
		}
	}
	h.log.Warn("dialplan step limit reached", "channel", ch.name)
}

// exec runs one dialplan application.
func (h *Host) exec(ch *channel, e *dpExten, app, data string) step {
	switch strings.ToLower(app) {
	case "noop", "verbose", "log", "progress", "ringing", "set_var":
		return stepNext
	case "set":
		h.appSet(ch, data)
		return stepNext
	case "answer":
		if err := h.answer(ch); err != nil {
			return stepStop
		}
		return stepNext
	case "playback", "background":
		if err := h.answer(ch); err != nil {
			return stepStop
		}
		return stepNext
	case "wait":
		secs, _ := strconv.ParseFloat(strings.TrimSpace(firstArg(data)), 64)
		if ch.instant || secs <= 0 {
			return stepNext
		}
		select {
		case <-ch.ctx.Done():
			return stepStop
		case <-time.After(time.Duration(secs * float64(time.Second))):
			return stepNext
		}
	case "hangup":
		if c := strings.TrimSpace(data); c != "" {
			if n, err := strconv.Atoi(c); err == nil && n > 0 {
				ch.cause = n
			}
		}
		return stepStop
	case "busy":
		ch.cause = causeUserBusy
		return stepStop
	case "congestion":
		ch.cause = causeCongestion
		return stepStop
	case "goto":
		return h.appGoto(ch, e, data)
	case "gosub":
		return h.appGosub(ch, data)
	case "return":
		if len(ch.stack) == 0 {
			return stepStop
		}
		a := ch.stack[len(ch.stack)-1]
		ch.stack = ch.stack[:len(ch.stack)-1]
		ch.context, ch.exten, ch.prio = a.context, a.exten, a.prio
		return stepJump
	case "execif":
		return stepNext
	case "dial":
		return h.appDial(ch, data)
	}
	// Asterisk hangs the channel up when the application does not exist.
	h.log.Warn("no application in the lab", "app", app, "channel", ch.name)
	return stepStop
}

// answer answers ch once.
func (h *Host) answer(ch *channel) error {
	if ch.answered {
		return nil
	}
	if err := ch.ops.answer(ch.ctx); err != nil {
		return err
	}
	ch.answered = true
	if ch.onAnswer != nil {
		ch.onAnswer()
	}
	return nil
}

// appSet is Set(name=value), including Set(DB(family/key)=value).
func (h *Host) appSet(ch *channel, data string) {
	name, value, ok := strings.Cut(data, "=")
	if !ok {
		return
	}
	name = strings.TrimSpace(name)
	if inner, ok := funcArg(name, "DB"); ok {
		fam, key, _ := strings.Cut(inner, "/")
		h.dbPut(fam, key, value)
		return
	}
	if inner, ok := funcArg(name, "CHANNEL"); ok && strings.EqualFold(inner, "hangup_handler_push") {
		args := splitAppArgs(value)
		a := dpAddr{context: ch.context, exten: "s", prio: 1}
		switch len(args) {
		case 1:
			a.context = args[0]
		case 2:
			a.context, a.exten = args[0], args[1]
		default:
			a.context, a.exten = args[0], args[1]
			a.prio, _ = strconv.Atoi(args[2])
		}
		ch.handlers = append(ch.handlers, a)
		return
	}
	ch.vars[strings.TrimLeft(name, "_")] = value
}

// appGoto is Goto([[context,]exten,]priority).
func (h *Host) appGoto(ch *channel, e *dpExten, data string) step {
	ctx, exten, prio, ok := h.dialplanAddr(ch, data)
	if !ok {
		h.log.Warn("Goto to a missing extension", "target", data, "channel", ch.name)
		return stepStop
	}
	ch.context, ch.exten, ch.prio = ctx, exten, prio
	return stepJump
}

// dialplanAddr resolves [[context,]exten,]priority (a number or a label) from
// the channel's place, as Goto and Gosub read it; ok is false when the
// extension or the label does not exist.
func (h *Host) dialplanAddr(ch *channel, data string) (ctx, exten string, prio int, ok bool) {
	args := splitAppArgs(data)
	ctx, exten = ch.context, ch.exten
	var pri string
	switch len(args) {
	case 1:
		pri = args[0]
	case 2:
		exten, pri = args[0], args[1]
	default:
		ctx, exten, pri = args[0], args[1], args[2]
	}
	run, _, _ := h.snapshot()
	target, _ := run.dp.find(ctx, exten)
	if target == nil {
		return "", "", 0, false
	}
	pri = strings.TrimSpace(pri)
	if n, err := strconv.Atoi(pri); err == nil {
		return ctx, exten, n, true
	}
	p := target.label(pri)
	if p == nil {
		return "", "", 0, false
	}
	return ctx, exten, p.prio, true
}

// appGosub is Gosub([[context,]exten,]priority[(arg1[,...])]): it keeps the
// next priority as the return address and sets ARG1... for the subroutine.
func (h *Host) appGosub(ch *channel, data string) step {
	var callArgs []string
	if i := strings.IndexByte(data, '('); i >= 0 && strings.HasSuffix(data, ")") {
		callArgs = splitAppArgs(data[i+1 : len(data)-1])
		data = data[:i]
	}
	ctx, exten, n, ok := h.dialplanAddr(ch, data)
	if !ok {
		h.log.Warn("Gosub to a missing extension", "target", data, "channel", ch.name)
		return stepStop
	}
	ch.stack = append(ch.stack, dpAddr{context: ch.context, exten: ch.exten, prio: ch.prio + 1})
	for i, a := range callArgs {
		ch.vars[fmt.Sprintf("ARG%d", i+1)] = a
	}
	ch.context, ch.exten, ch.prio = ctx, exten, n
	return stepJump
}

// appDial is Dial(Tech/dest[&...],timeout,options): only the first destination is
// dialled. With option g the dialplan goes on when the called party hangs up.
func (h *Host) appDial(ch *channel, data string) step {
	args := splitAppArgs(data)
	if len(args) == 0 || args[0] == "" {
		return stepNext
	}
	dest, _, _ := strings.Cut(args[0], "&")
	var timeout time.Duration
	if len(args) > 1 {
		if secs, err := strconv.ParseFloat(strings.TrimSpace(args[1]), 64); err == nil && secs > 0 {
			timeout = time.Duration(secs * float64(time.Second))
		}
	}
	opts := ""
	if len(args) > 2 {
		opts = args[2]
	}
	res := h.dial(ch, dest, timeout)
	ch.vars["DIALSTATUS"] = res.status
	ch.cause = res.cause
	h.log.Info("dial finished", "channel", ch.name, "dest", dest, "dialstatus", res.status, "hangupcause", res.cause)
	if !res.answered {
		return stepNext
	}
	if res.callerGone || !strings.Contains(opts, "g") {
		return stepStop
	}
	return stepNext
}

// substitute expands ${...} the way pbx_substitute_variables does, innermost first.
func (h *Host) substitute(ch *channel, s string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 >= len(s) || s[i+1] != '{' {
			b.WriteByte(s[i])
			i++
			continue
		}
		depth, j := 1, i+2
		for ; j < len(s) && depth > 0; j++ {
			switch s[j] {
			case '{':
				depth++
			case '}':
				depth--
			}
		}
		if depth != 0 {
			b.WriteString(s[i:])
			break
		}
		b.WriteString(h.lookupVar(ch, h.substitute(ch, s[i+2:j-1])))
		i = j
	}
	return b.String()
}

// lookupVar resolves one ${...} expression: NAME, NAME:offset[:length], DB(f/k).
func (h *Host) lookupVar(ch *channel, expr string) string {
	if inner, ok := funcArg(expr, "DB"); ok {
		fam, key, _ := strings.Cut(inner, "/")
		v, _ := h.dbGet(fam, key)
		return v
	}
	name, sub, hasSub := strings.Cut(expr, ":")
	var v string
	switch name {
	case "EXTEN":
		v = ch.exten
	case "CONTEXT":
		v = ch.context
	case "PRIORITY":
		v = strconv.Itoa(ch.prio)
	case "CHANNEL":
		v = ch.name
	case "HANGUPCAUSE":
		v = strconv.Itoa(ch.cause)
	default:
		var ok bool
		if v, ok = ch.vars[name]; !ok {
			run, _, _ := h.snapshot()
			if run.dp != nil {
				v = run.dp.globals[name]
			}
		}
	}
	if !hasSub {
		return v
	}
	offStr, lenStr, hasLen := strings.Cut(sub, ":")
	off, _ := strconv.Atoi(offStr)
	if off < 0 {
		off = max(len(v)+off, 0)
	}
	if off > len(v) {
		return ""
	}
	v = v[off:]
	if hasLen {
		n, _ := strconv.Atoi(lenStr)
		if n < 0 {
			n = max(len(v)+n, 0)
		}
		if n < len(v) {
			v = v[:n]
		}
	}
	return v
}

// funcArg returns the argument of "NAME(arg)" when s is a call of NAME.
func funcArg(s, name string) (string, bool) {
	if len(s) > len(name)+1 && strings.EqualFold(s[:len(name)], name) && s[len(name)] == '(' && strings.HasSuffix(s, ")") {
		return s[len(name)+1 : len(s)-1], true
	}
	return "", false
}

// splitAppArgs splits application data on commas outside parentheses and quotes,
// as AST_STANDARD_APP_ARGS does.
func splitAppArgs(data string) []string {
	var out []string
	var cur strings.Builder
	paren, quote := 0, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '\\' && i+1 < len(data):
			cur.WriteByte(data[i+1])
			i++
			continue
		case c == '"':
			quote = !quote
			continue
		case quote:
		case c == '(':
			paren++
		case c == ')' && paren > 0:
			paren--
		case c == ',' && paren == 0:
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	return append(out, cur.String())
}

func firstArg(data string) string { return splitAppArgs(data)[0] }

// dbPut and dbGet are AstDB (family/key), which survives restarts.
func (h *Host) dbPut(fam, key, value string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.db["/"+fam+"/"+key] = value
}

func (h *Host) dbGet(fam, key string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.db["/"+fam+"/"+key]
	return v, ok
}

func (h *Host) dbDel(fam, key string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := "/" + fam + "/" + key
	_, ok := h.db[k]
	delete(h.db, k)
	return ok
}

// localOps is the ;2 leg of a Local channel made by `channel originate ...
// application Wait N`: once answered, the ;1 leg waits N seconds and hangs up.
type localOps struct {
	wait  time.Duration
	end   context.CancelFunc
	mu    sync.Mutex
	timer *time.Timer
	limit *time.Timer
}

func (l *localOps) answer(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limit != nil {
		l.limit.Stop()
	}
	if l.timer == nil {
		l.timer = time.AfterFunc(l.wait, l.end)
	}
	return nil
}

func (l *localOps) hangup(int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
	}
	if l.limit != nil {
		l.limit.Stop()
	}
}

// originate is `channel originate Local/<exten>@<context> application <App> [data]`:
// it runs the dialplan in the background and returns at once, printing nothing
// whatever happens (docs/asterisk.md#the-probe-call).
func (h *Host) originate(args []string) {
	if len(args) < 3 {
		return
	}
	tech, dest, _ := strings.Cut(args[0], "/")
	if !strings.EqualFold(tech, "Local") {
		h.log.Warn("channel originate: only Local channels are modelled by the lab", "channel", args[0])
		return
	}
	if i := strings.LastIndexByte(dest, '/'); i > 0 {
		dest = dest[:i] // Local channel options such as /n
	}
	exten, dpContext, ok := strings.Cut(dest, "@")
	if !ok {
		dpContext = "default"
	}
	wait := time.Duration(0)
	if strings.EqualFold(args[1], "application") && strings.EqualFold(args[2], "Wait") && len(args) > 3 {
		if secs, err := strconv.ParseFloat(args[3], 64); err == nil && secs > 0 {
			wait = time.Duration(secs * float64(time.Second))
		}
	}
	run, _, _ := h.snapshot()
	if run.dp == nil {
		return
	}
	if e, _ := run.dp.find(dpContext, exten); e == nil {
		h.log.Warn("channel originate: no such extension/context", "exten", exten, "context", dpContext)
		return
	}
	h.mu.Lock()
	h.chanSeq++
	seq := h.chanSeq
	h.mu.Unlock()
	ops := &localOps{wait: wait}
	ch := h.newChannel(fmt.Sprintf("Local/%s@%s-%08x;2", exten, dpContext, seq), dpContext, exten, ops)
	ops.end = ch.end
	ops.limit = time.AfterFunc(originateAnswerBy, ch.end)
	h.goTracked(func() { h.runChannel(ch) })
}
