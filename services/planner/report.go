package planner

import (
	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/asterisk"
	"github.com/pbxfleet/pbxfleet/internal/intent"
)

// Report is a Plan with every secret masked: what `pbxfleet plan` shows, and
// its JSON document. Field order and slice order are fixed, so the same plan
// always encodes to the same JSON.
type Report struct {
	// PlanHash is Plan.Hash.
	PlanHash string `json:"plan_hash"`
	// Summary counts the nodes by change.
	Summary Summary `json:"summary"`
	// Sites are in spec order.
	Sites []SiteReport `json:"sites"`
	// Removed are nodes with a desired state but no site in the fleet file.
	Removed []string `json:"removed"`
	// Warnings do not stop the plan.
	Warnings []Problem `json:"warnings"`
}

// Summary counts sites and nodes.
type Summary struct {
	Sites     int `json:"sites"`
	Nodes     int `json:"nodes"`
	New       int `json:"new"`
	Changed   int `json:"changed"`
	Unchanged int `json:"unchanged"`
}

// SiteReport is one site of a Report.
type SiteReport struct {
	Site     string `json:"site"`
	Scenario string `json:"scenario"`
	// OML says how OML's Asterisk runs; the agents-node's local config must agree.
	OML OMLRuntime `json:"oml_runtime"`
	// SecretSource is env:NAME, file:PATH or literal: where the secret came from.
	SecretSource string `json:"secret_source"`
	// OMLObjects are the OMniLeads objects an agents-node in objects mode keeps
	// for the site (docs/omnileads.md); in custom-file mode it writes the
	// wizard file instead.
	OMLObjects OMLObjectsReport `json:"oml_objects"`
	Relations  []Relation       `json:"relations"`
	Nodes      []NodeReport     `json:"nodes"`
}

// OMLRuntime is how OML's Asterisk runs at a site.
type OMLRuntime struct {
	Profile    string `json:"profile"`
	Deployment string `json:"deployment"`
	Container  string `json:"container,omitempty"`
}

// OMLObjectsReport is what a site's OMniLeads holds as objects in objects mode.
type OMLObjectsReport struct {
	// Trunk is the SIP trunk (TroncalSIP): its name, pjsip, and its text config
	// (the wizard block, secret masked).
	Trunk OMLTrunkReport `json:"trunk"`
	// OutboundRoute is the outbound route (RutaSaliente) whose one trunk is Trunk.
	OutboundRoute events.OMLRoute `json:"outbound_route"`
	// InboundRoutes are the DIDs whose inbound route (RutaEntrante) is checked,
	// or created to InboundCampaign.
	InboundRoutes []string `json:"inbound_routes"`
}

// OMLTrunkReport is the OMniLeads SIP trunk of a site.
type OMLTrunkReport struct {
	Name       string `json:"name"`
	Technology string `json:"technology"`
	TextConfig string `json:"text_config"`
}

// omlObjects returns the objects of t, secret masked.
func omlObjects(t asterisk.Trunk) OMLObjectsReport {
	ev := intent.ToEvent(t)
	r := OMLObjectsReport{
		Trunk:         OMLTrunkReport{Name: t.OMLTrunkName, Technology: "pjsip"},
		OutboundRoute: ev.Route(),
		InboundRoutes: make([]string, 0, len(t.DIDs)),
	}
	if text, err := asterisk.WizardText(t); err == nil {
		r.Trunk.TextConfig = string(asterisk.Mask([]byte(text), t.Secret))
	}
	for _, d := range t.DIDs {
		r.InboundRoutes = append(r.InboundRoutes, d.Number)
	}
	return r
}

// NodeReport is one node of a Report.
type NodeReport struct {
	Node            string   `json:"node"`
	Role            string   `json:"role"`
	Change          Change   `json:"change"`
	Changes         []string `json:"changes"`
	CurrentRevision uint64   `json:"current_revision"`
	Revision        uint64   `json:"revision"`
	// Intent is the desired trunk with the secret replaced by asterisk.MaskedSecret.
	Intent   events.Trunk    `json:"intent"`
	Files    []FileReport    `json:"files"`
	Includes []IncludeReport `json:"includes"`
}

// FileReport is one managed file, secret masked.
type FileReport struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// IncludeReport is one #include line an agent adds to a stock file.
type IncludeReport struct {
	Parent string `json:"parent"`
	Line   string `json:"line"`
}

// Report returns the plan with every secret masked with asterisk.Mask.
func (p *Plan) Report() Report {
	r := Report{
		PlanHash: p.Hash,
		Sites:    make([]SiteReport, 0, len(p.Sites)),
		Removed:  append([]string{}, p.Removed...),
		Warnings: append([]Problem{}, p.Warnings...),
	}
	for _, sp := range p.Sites {
		secret := sp.Site.Trunk.Secret
		sr := SiteReport{
			Site:         sp.Site.ID,
			Scenario:     string(sp.Site.Trunk.Scenario),
			OML:          OMLRuntime{Profile: sp.Site.Profile, Deployment: sp.Site.Deployment},
			SecretSource: sp.Site.SecretSource,
			OMLObjects:   omlObjects(sp.Site.Trunk),
			Relations:    append([]Relation{}, sp.Relations...),
			Nodes:        make([]NodeReport, 0, len(sp.Nodes)),
		}
		if sp.Site.Deployment != DeploymentHost {
			sr.OML.Container = sp.Site.Container
		}
		r.Summary.Sites++
		for _, np := range sp.Nodes {
			r.Summary.Nodes++
			switch np.Change {
			case ChangeNew:
				r.Summary.New++
			case ChangeChanged:
				r.Summary.Changed++
			default:
				r.Summary.Unchanged++
			}
			in := np.Desired.Trunk
			if in.Secret != "" {
				in.Secret = asterisk.MaskedSecret
			}
			nr := NodeReport{
				Node:            np.Desired.Node,
				Role:            np.Role,
				Change:          np.Change,
				Changes:         append([]string{}, np.Changes...),
				CurrentRevision: np.CurrentRevision,
				Revision:        np.Desired.Revision,
				Intent:          in,
				Files:           make([]FileReport, 0, len(np.Rendered.Files)),
				Includes:        make([]IncludeReport, 0, len(np.Rendered.Includes)),
			}
			for _, f := range np.Rendered.Files {
				nr.Files = append(nr.Files, FileReport{Name: f.Name, Content: string(asterisk.Mask(f.Content, secret))})
			}
			for _, inc := range np.Rendered.Includes {
				nr.Includes = append(nr.Includes, IncludeReport{Parent: inc.Parent, Line: inc.Line})
			}
			sr.Nodes = append(sr.Nodes, nr)
		}
		r.Sites = append(r.Sites, sr)
	}
	return r
}
