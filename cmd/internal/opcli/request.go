package opcli

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// Request calls an orchestrator endpoint and decodes its JSON answer. A service
// error (Nats-Service-Error header) becomes an error with its text; no responder
// means no control plane is running.
func Request(ctx context.Context, nc *nats.Conn, verb string, body, into any) error {
	err := orchestrator.Request(ctx, nc, verb, body, into)
	if errors.Is(err, orchestrator.ErrNoOrchestrator) {
		return fmt.Errorf("no orchestrator answers on %s: start the control plane with `pbxfleet serve`", events.RolloutSubject(verb))
	}
	var se *orchestrator.ServiceError
	if errors.As(err, &se) && se.Code == orchestrator.CodeBadRequest {
		return Invalid(se)
	}
	return err
}
