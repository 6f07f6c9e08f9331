package asterisk

import (
	"errors"
	"fmt"
	"regexp"
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

// OMniLeads' own validators of these fields (configuracion_telefonia_app/models.py,
// release 2.6.3): names ^[\w]+$, dial options ^[HhKkRrL():MATtWw]+$, prefix and
// prepend ^(\+|\*|#|\d)+$, match pattern ^(\.|-|\+|\*|#|\d|\[|\]|[XZN])+$.
var (
	omlNameRE    = regexp.MustCompile(`^\w+$`)
	omlDialOptRE = regexp.MustCompile(`^[HhKkRrL():MATtWw]+$`)
	omlPrefixRE  = regexp.MustCompile(`^[+*#0-9]+$`)
	omlMatchRE   = regexp.MustCompile(`^[-.+*#0-9\[\]XZN]+$`)
)

// CheckOMLRoute returns every problem of r as OMniLeads' own validators would
// find it, or nil.
func CheckOMLRoute(r OMLRoute) error {
	var errs []error
	if !omlNameRE.MatchString(r.Name) || len(r.Name) > 128 {
		errs = append(errs, fmt.Errorf("%w: outbound route name %q: OMniLeads names are 1-128 letters, digits and _", ErrInvalidTrunk, r.Name))
	}
	if r.RingTime < 1 || r.RingTime > 3600 {
		errs = append(errs, fmt.Errorf("%w: ring time %d is out of range (1-3600 seconds)", ErrInvalidTrunk, r.RingTime))
	}
	if !omlDialOptRE.MatchString(r.DialOptions) || len(r.DialOptions) > 512 {
		errs = append(errs, fmt.Errorf("%w: dial options %q: OMniLeads allows only HhKkRrL():MATtWw", ErrInvalidTrunk, r.DialOptions))
	}
	if len(r.Patterns) == 0 {
		errs = append(errs, fmt.Errorf("%w: an outbound route needs at least one dial pattern", ErrInvalidTrunk))
	}
	for i, p := range r.Patterns {
		if p.Prefix != "" && (!omlPrefixRE.MatchString(p.Prefix) || len(p.Prefix) > 32) {
			errs = append(errs, fmt.Errorf("%w: pattern %d: prefix %q: digits, +, * and # only (up to 32)", ErrInvalidTrunk, i+1, p.Prefix))
		}
		if p.Prepend != "" && (!omlPrefixRE.MatchString(p.Prepend) || len(p.Prepend) > 32) {
			errs = append(errs, fmt.Errorf("%w: pattern %d: prepend %q: digits, +, * and # only (up to 32)", ErrInvalidTrunk, i+1, p.Prepend))
		}
		if !omlMatchRE.MatchString(p.Pattern) || len(p.Pattern) > 100 {
			errs = append(errs, fmt.Errorf("%w: pattern %d: %q: digits, X, Z, N, [ ], ., -, +, * and # only (up to 100)", ErrInvalidTrunk, i+1, p.Pattern))
		}
	}
	if r.InboundCampaign != "" && (!omlNameRE.MatchString(r.InboundCampaign) || len(r.InboundCampaign) > 128) {
		errs = append(errs, fmt.Errorf("%w: inbound campaign %q: OMniLeads names are letters, digits and _", ErrInvalidTrunk, r.InboundCampaign))
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
