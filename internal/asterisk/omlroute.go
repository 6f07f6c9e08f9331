package asterisk

import (
	"errors"
	"fmt"

	"github.com/pbxfleet/pbxfleet/internal/textclip"
	"github.com/pbxfleet/pbxfleet/internal/trunkmodel"
)

// OMLRoute is an OMniLeads outbound route (RutaSaliente) to the PBX over the
// site's trunk, and the optional inbound campaign of the DIDs' inbound routes.
type OMLRoute struct {
	Name            string
	RingTime        int
	DialOptions     string
	Patterns        []DialPattern
	InboundCampaign string
}

// DialPattern is one dial pattern of an OMniLeads outbound route.
type DialPattern struct {
	Prefix, Prepend, Pattern string
}

// CheckOMLRoute returns every problem of r as OMniLeads' own validators would
// find it, or nil.
func CheckOMLRoute(r OMLRoute) error {
	var errs []error
	if !trunkmodel.OMLName(r.Name) {
		errs = append(errs, fmt.Errorf("%w: outbound route name %q: OMniLeads names are 1-%d letters, digits and _", ErrInvalidTrunk, textclip.Value(r.Name), trunkmodel.MaxOMLName))
	}
	if r.RingTime < trunkmodel.MinOMLRingTime || r.RingTime > trunkmodel.MaxOMLRingTime {
		errs = append(errs, fmt.Errorf("%w: ring time %d is out of range (%d-%d seconds)", ErrInvalidTrunk, r.RingTime, trunkmodel.MinOMLRingTime, trunkmodel.MaxOMLRingTime))
	}
	if !trunkmodel.OMLDialOptions(r.DialOptions) {
		errs = append(errs, fmt.Errorf("%w: dial options %q: OMniLeads allows only HhKkRrL():MATtWw (up to %d)", ErrInvalidTrunk, textclip.Value(r.DialOptions), trunkmodel.MaxOMLDialOptions))
	}
	if len(r.Patterns) == 0 {
		errs = append(errs, fmt.Errorf("%w: an outbound route needs at least one dial pattern", ErrInvalidTrunk))
	}
	for i, p := range r.Patterns {
		if p.Prefix != "" && !trunkmodel.OMLDigits(p.Prefix) {
			errs = append(errs, fmt.Errorf("%w: pattern %d: prefix %q: digits, +, * and # only (up to %d)", ErrInvalidTrunk, i+1, textclip.Value(p.Prefix), trunkmodel.MaxOMLDigits))
		}
		if p.Prepend != "" && !trunkmodel.OMLDigits(p.Prepend) {
			errs = append(errs, fmt.Errorf("%w: pattern %d: prepend %q: digits, +, * and # only (up to %d)", ErrInvalidTrunk, i+1, textclip.Value(p.Prepend), trunkmodel.MaxOMLDigits))
		}
		if !trunkmodel.OMLMatchPattern(p.Pattern) {
			errs = append(errs, fmt.Errorf("%w: pattern %d: %q: digits, X, Z, N, [ ], ., -, +, * and # only (up to %d)", ErrInvalidTrunk, i+1, textclip.Value(p.Pattern), trunkmodel.MaxOMLPattern))
		}
	}
	if r.InboundCampaign != "" && !trunkmodel.OMLName(r.InboundCampaign) {
		errs = append(errs, fmt.Errorf("%w: inbound campaign %q: OMniLeads names are 1-%d letters, digits and _", ErrInvalidTrunk, textclip.Value(r.InboundCampaign), trunkmodel.MaxOMLName))
	}
	return errors.Join(errs...)
}

// The route probe: a call dialled into OMniLeads' own [oml-outr] context, as an
// agent's call would be, so that OMniLeads' outbound routes pick the route and
// its trunk; its outcome is kept in AstDB like the trunk probe's.
const (
	RouteProbeContext = "pbxfleet-routeprobe"
	RouteProbeDBKey   = "routeprobe"
)

// RouteProbeDialplan is the context an OMniLeads agent in objects mode adds to
// its managed dialplan for the route probe: the number goes to [oml-outr] with
// OMLOUTNUM set (what OMniLeads' route contexts read), and a hangup handler
// records DIALSTATUS:HANGUPCAUSE whatever context the call ends in.
func RouteProbeDialplan() string {
	db := fmt.Sprintf("DB(%s/%s)", ProbeDBFamily, RouteProbeDBKey)
	return fmt.Sprintf(`
[%[1]s]
exten => _X.,1,Set(%[2]s=started)
 same => n,Set(CHANNEL(hangup_handler_push)=%[1]s-done,s,1)
 same => n,Set(__OMLOUTNUM=${EXTEN})
 same => n,Goto(oml-outr,${EXTEN},1)

[%[1]s-done]
exten => s,1,Set(%[2]s=${DIALSTATUS}:${HANGUPCAUSE})
 same => n,Return()
`, RouteProbeContext, db)
}
