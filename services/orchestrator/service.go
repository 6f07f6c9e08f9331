package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/nats-io/nats.go/micro"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/strictjson"
)

// StartRequest is the body of pbxfleet.rollout.start.
type StartRequest struct {
	Plan     Plan     `json:"plan"`
	Strategy Strategy `json:"strategy"`
}

// StartResponse is the answer of pbxfleet.rollout.start.
type StartResponse struct {
	ID string `json:"id"`
}

// IDRequest is the body of the other endpoints: exactly one of {"id":"..."}
// (that rollout) or {"current":true} (the active rollout, else the last one).
// An empty body names nothing and is refused: a message a client did not mean
// as a request (an empty delivery) must never act on the current rollout.
type IDRequest struct {
	ID      string `json:"id,omitempty"`
	Current bool   `json:"current,omitempty"`
}

// Error codes of the service, in the Nats-Service-Error-Code header.
const (
	// CodeBadRequest: the body, plan or strategy is invalid.
	CodeBadRequest = "400"
	// CodeNotFound: no such rollout.
	CodeNotFound = "404"
	// CodeConflict: another rollout is active, or the phase forbids the operation.
	CodeConflict = "409"
	// CodeInternal: NATS or storage trouble.
	CodeInternal = "500"
)

// Serve runs the NATS service pbxfleet-orchestrator (nats.go/micro) with one
// endpoint per verb on pbxfleet.rollout.<verb> (start, status, pause, resume,
// abort, rollback; see StartRequest and IDRequest) until ctx ends. It drives
// every rollout started, resumed, aborted or rolled back through it in a
// goroutine it owns, and at start it picks up the active rollout, whose driver
// may have died. It returns nil when ctx ends, after stopping the service and
// every driver, or an error when the service cannot start.
func (e *Engine) Serve(ctx context.Context) error {
	if e.nc == nil {
		return fmt.Errorf("serve %s: no NATS connection", events.ServiceOrchestrator)
	}
	s := &server{e: e, ctx: ctx, drivers: map[string]*driverSlot{}}
	svc, err := micro.AddService(e.nc, micro.Config{
		Name:        events.ServiceOrchestrator,
		Version:     e.version,
		Description: "pbxfleet rollout engine: start, watch and steer rollouts of the SIP trunk",
	})
	if err != nil {
		return fmt.Errorf("serve %s: %w", events.ServiceOrchestrator, err)
	}
	g := svc.AddGroup(events.RolloutSubjectPrefix)
	handlers := map[string]func(context.Context, []byte) (any, error){
		events.RolloutStart:    s.start,
		events.RolloutStatus:   s.status,
		events.RolloutPause:    s.op(e.Pause, false),
		events.RolloutResume:   s.op(e.Resume, true),
		events.RolloutAbort:    s.op(e.Abort, true),
		events.RolloutRollback: s.op(e.Rollback, true),
	}
	for _, verb := range events.RolloutVerbs() {
		fn := handlers[verb]
		h := micro.ContextHandler(ctx, func(ctx context.Context, req micro.Request) {
			if events.FromJetStream(req.Reply(), req.Headers()) {
				// Published by JetStream (a consumer's delivery, a republish): whoever
				// made the consumer chose this subject; neither act nor answer.
				e.log.Warn("refused a request delivered by JetStream", "subject", req.Subject(), "reply", req.Reply())
				return
			}
			ctx, cancel := context.WithTimeout(ctx, DefaultOpTimeout)
			defer cancel()
			out, err := fn(ctx, req.Data())
			if err != nil {
				_ = req.Error(errorCode(err), err.Error(), nil)
				return
			}
			_ = req.RespondJSON(out)
		})
		if err := g.AddEndpoint(verb, h); err != nil {
			_ = svc.Stop()
			return fmt.Errorf("serve %s: endpoint %s: %w", events.ServiceOrchestrator, verb, err)
		}
	}
	e.log.Info("orchestrator service running", "service", events.ServiceOrchestrator, "subjects", events.RolloutSubjectPrefix+".>")
	if e.serving != nil {
		e.serving()
	}

	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		newKeeper(e, s.drive).run(ctx)
	}()

	if r, err := e.Current(ctx); err == nil && !r.Phase.Terminal() {
		e.log.Info("picking up the active rollout", "rollout", r.ID, "phase", r.Phase)
		s.drive(r.ID)
	} else if err != nil && !errors.Is(err, ErrRolloutNotFound) {
		e.log.Warn("could not read the current rollout", "err", err)
	}

	<-ctx.Done()
	err = svc.Stop()
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("stop %s: %w", events.ServiceOrchestrator, err)
	}
	return nil
}

// server is Serve's state: the drivers it runs.
type server struct {
	e   *Engine
	ctx context.Context // Serve's: drivers live as long as Serve
	wg  sync.WaitGroup

	mu      sync.Mutex
	drivers map[string]*driverSlot
}

type driverSlot struct{ again bool }

// drive runs Run for id in a goroutine unless one runs already; then that one
// runs once more after it returns, so a resume racing a pause is not lost.
func (s *server) drive(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slot, ok := s.drivers[id]; ok {
		slot.again = true
		return
	}
	slot := &driverSlot{}
	s.drivers[id] = slot
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			r, err := s.e.Run(s.ctx, id)
			if err != nil && s.ctx.Err() == nil {
				s.e.log.Error("rollout driver stopped", "rollout", id, "err", err)
			}
			s.mu.Lock()
			if !slot.again || s.ctx.Err() != nil {
				delete(s.drivers, id)
				s.mu.Unlock()
				s.e.log.Debug("rollout driver done", "rollout", id, "phase", r.Phase)
				return
			}
			slot.again = false
			s.mu.Unlock()
		}
	}()
}

func (s *server) start(ctx context.Context, body []byte) (any, error) {
	var req StartRequest
	if err := strictjson.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("%w: start body: %w", ErrBadRequest, err)
	}
	r, err := s.e.Start(ctx, req.Plan, req.Strategy)
	if err != nil {
		return nil, err
	}
	s.drive(r.ID)
	return StartResponse{ID: r.ID}, nil
}

func (s *server) status(ctx context.Context, body []byte) (any, error) {
	id, err := s.id(ctx, body)
	if err != nil {
		return nil, err
	}
	r, err := s.e.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return fitAnswer(r, s.e.maxAnswerBytes()), nil
}

// fitAnswer returns r, or r with fewer sites when its JSON would not fit in
// limit bytes (one NATS message): the sites that need attention first (failed,
// unreachable, in flight, cancelled), then the rest in plan order, as many as
// fit; SitesOmitted counts the others. Get and Watch give them all.
func fitAnswer(r Rollout, limit int) Rollout {
	b, err := json.Marshal(r)
	if err != nil || len(b) <= limit {
		return r
	}
	rank := func(o SiteOutcome) int {
		switch o {
		case SiteFailed, SiteUnreachable:
			return 0
		case SiteInFlight, SiteCancelled:
			return 1
		}
		return 2
	}
	sites := slices.Clone(r.Sites)
	slices.SortStableFunc(sites, func(a, b SiteState) int { return rank(a.Outcome) - rank(b.Outcome) })
	head := r
	head.Sites = nil
	hb, _ := json.Marshal(head)
	room := limit - len(hb) - 64
	keep := 0
	for _, st := range sites {
		sb, _ := json.Marshal(st)
		if room-len(sb)-1 < 0 {
			break
		}
		room -= len(sb) + 1
		keep++
	}
	head.Sites = sites[:keep]
	slices.SortFunc(head.Sites, func(a, b SiteState) int { return a.Index - b.Index })
	head.SitesOmitted = len(r.Sites) - keep
	return head
}

// maxAnswerBytes is the largest answer the service sends: the connection's max
// payload less room for headers.
func (e *Engine) maxAnswerBytes() int {
	limit := int64(1 << 20)
	if e.nc != nil && e.nc.MaxPayload() > 0 {
		limit = e.nc.MaxPayload()
	}
	return int(limit) - 8<<10
}

// op adapts an operation to an endpoint; drive says whether the rollout needs
// a driver afterwards.
func (s *server) op(fn func(context.Context, string) (Rollout, error), drive bool) func(context.Context, []byte) (any, error) {
	return func(ctx context.Context, body []byte) (any, error) {
		id, err := s.id(ctx, body)
		if err != nil {
			return nil, err
		}
		r, err := fn(ctx, id)
		if err != nil {
			return nil, err
		}
		if drive && !r.Phase.Terminal() {
			s.drive(r.ID)
		}
		return fitAnswer(r, s.e.maxAnswerBytes()), nil
	}
}

func (s *server) id(ctx context.Context, body []byte) (string, error) {
	const want = `body must be {"id":"<rollout id>"} or {"current":true}`
	if len(body) == 0 {
		return "", fmt.Errorf("%w: empty body: %s", ErrBadRequest, want)
	}
	var req IDRequest
	if err := strictjson.Unmarshal(body, &req); err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrBadRequest, want, err)
	}
	switch {
	case req.ID != "" && req.Current:
		return "", fmt.Errorf("%w: both id and current: %s", ErrBadRequest, want)
	case req.ID == "" && !req.Current:
		return "", fmt.Errorf("%w: neither id nor current: %s", ErrBadRequest, want)
	}
	return s.e.resolve(ctx, req.ID)
}

func errorCode(err error) string {
	switch {
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrInvalidPlan), errors.Is(err, ErrInvalidStrategy):
		return CodeBadRequest
	case errors.Is(err, ErrRolloutNotFound):
		return CodeNotFound
	case errors.Is(err, ErrRolloutActive), errors.Is(err, ErrInvalidPhase), errors.Is(err, ErrConflict):
		return CodeConflict
	}
	return CodeInternal
}
