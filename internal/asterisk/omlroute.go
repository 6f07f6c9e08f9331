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
