package opcli

import (
	"fmt"
	"path/filepath"

	"github.com/nats-io/nkeys"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/creds"
	"github.com/pbxfleet/pbxfleet/internal/seal"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// loadSealKeys reads the fleet's public keys and the orchestrator's curve seed
// from a credentials dir (pbxfleet creds).
func loadSealKeys(dir string) (*creds.Set, nkeys.KeyPair, error) {
	set, err := creds.Load(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("--seal: %w", err)
	}
	sender, err := seal.LoadKey(filepath.Join(dir, "orchestrator.xk"))
	if err != nil {
		return nil, nil, fmt.Errorf("--seal: %w", err)
	}
	return set, sender, nil
}

// SealPlan replaces every plaintext trunk secret of the plan with the secret
// sealed to the receiving node's curve key (pbxfleet creds wrote them), so the
// secret is ciphertext on the wire, in the orchestrator's requests and at rest
// in JetStream. Only that node's agent can open it. A node whose current desired
// state (from current) already holds the same secret keeps its ciphertext, so
// an unchanged site stays unchanged and the rollout skips it.
func SealPlan(p *orchestrator.Plan, dir string, current map[string]events.Desired) error {
	set, sender, err := loadSealKeys(dir)
	if err != nil {
		return err
	}
	for i, t := range p.Targets {
		for role, tr := range t.Nodes {
			nodeID := events.NodeID(t.Site, role)
			pub := set.CurveKey(nodeID)
			if pub == "" {
				return fmt.Errorf("--seal: no key for node %s in %s: run pbxfleet creds again with this fleet", nodeID, dir)
			}
			if tr.Secret == "" {
				continue
			}
			prev := current[nodeID].Trunk
			sealed, by, err := seal.SealStable(sender, pub, tr.Secret, prev.SealedSecret, prev.SealedBy)
			if err != nil {
				return fmt.Errorf("--seal %s: %w", nodeID, err)
			}
			tr.Secret, tr.SealedSecret, tr.SealedBy = "", sealed, by
			p.Targets[i].Nodes[role] = tr
		}
	}
	return nil
}

// OpenCurrent replaces, in current, every trunk secret the orchestrator key in
// dir sealed with its plaintext, so that a plan can tell whether a fleet
// file's secret differs from the one a node runs. The result stays in this
// process: plans mask secrets and only say "secret changed".
func OpenCurrent(current map[string]events.Desired, dir string) error {
	set, sender, err := loadSealKeys(dir)
	if err != nil {
		return err
	}
	senderPub, err := sender.PublicKey()
	if err != nil {
		return fmt.Errorf("--seal: %w", err)
	}
	for node, d := range current {
		tr := d.Trunk
		if tr.SealedSecret == "" || tr.SealedBy != senderPub {
			continue // not sealed, or by another key: compared without the secret
		}
		pub := set.CurveKey(node)
		if pub == "" {
			continue
		}
		secret, err := seal.OpenAsSender(sender, pub, tr.SealedSecret)
		if err != nil {
			return fmt.Errorf("--seal: node %s: %w", node, err)
		}
		d.Trunk.Secret, d.Trunk.SealedSecret, d.Trunk.SealedBy = secret, "", ""
		current[node] = d
	}
	return nil
}
