package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/pbxfleet/pbxfleet/events"
)

// ServiceError is an error answer of the orchestrator service: its
// Nats-Service-Error-Code (CodeBadRequest, ...) and text.
type ServiceError struct {
	Verb, Code, Text string
}

func (e *ServiceError) Error() string {
	if e.Code == CodeBadRequest {
		return fmt.Sprintf("%s: %s", e.Verb, e.Text)
	}
	return fmt.Sprintf("%s (%s): %s", e.Verb, e.Code, e.Text)
}

// ErrNoOrchestrator means no orchestrator service answered: no control plane runs.
var ErrNoOrchestrator = errors.New("no orchestrator answers")

// DefaultRequestTimeout bounds one Request unless ctx ends sooner.
const DefaultRequestTimeout = 30 * time.Second

// Request calls the orchestrator endpoint pbxfleet.rollout.<verb> with body as
// JSON and decodes its answer into into (nil: ignored). It is how every client
// steers rollouts, the CLI's verbs and the web page's buttons alike. A service
// error is a *ServiceError; no responder is an error wrapping ErrNoOrchestrator.
func Request(ctx context.Context, nc *nats.Conn, verb string, body, into any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, DefaultRequestTimeout)
	defer cancel()
	msg, err := nc.RequestWithContext(rctx, events.RolloutSubject(verb), data)
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("%w on %s: start the control plane with `pbxfleet serve`", ErrNoOrchestrator, events.RolloutSubject(verb))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", events.RolloutSubject(verb), err)
	}
	if e := msg.Header.Get(micro.ErrorHeader); e != "" {
		return &ServiceError{Verb: verb, Code: msg.Header.Get(micro.ErrorCodeHeader), Text: e}
	}
	if into == nil {
		return nil
	}
	if err := json.Unmarshal(msg.Data, into); err != nil {
		return fmt.Errorf("%s: decode answer: %w", verb, err)
	}
	return nil
}
