package asterisk

import (
	"fmt"
	"regexp"
	"strings"
)

// EndpointDetail is what `pjsip show endpoint <name>` says: the same summary block
// as `pjsip show endpoints`, then every endpoint option as res_pjsip resolved it.
type EndpointDetail struct {
	Endpoint Endpoint
	// Params maps each ParameterName to its ParameterValue as printed, e.g.
	// "context" -> "from-pbx", "allow" -> "(alaw|ulaw)", "@pjsip_wizard" -> "issabel".
	Params map[string]string
}

// endpointNotFoundRE is res_pjsip's answer for an unknown object (docs/asterisk.md#reloads-and-cli-replies).
var endpointNotFoundRE = regexp.MustCompile(`^Unable to find object (.*)\.$`)

// ParseEndpoint reads the output of `pjsip show endpoint <name>`. It returns an
// error wrapping ErrNotFound for "Unable to find object <name>.", ErrNotRunning or
// ErrNoSuchCommand for those answers, and ErrUnexpectedOutput unless there is
// exactly one endpoint block followed by a non-empty ParameterName table. Log
// lines are skipped. When a parameter is printed twice the first value is kept.
func ParseEndpoint(out []byte) (EndpointDetail, error) {
	const op = "parse pjsip show endpoint"
	lines := cliLines(out)
	if err := checkCLIFailure(op, lines); err != nil {
		return EndpointDetail{}, err
	}
	for _, l := range lines {
		if m := endpointNotFoundRE.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			return EndpointDetail{}, fmt.Errorf("%s: endpoint %q: %w", op, m[1], ErrNotFound)
		}
	}
	body, err := skipEndpointHeader(op, lines)
	if err != nil {
		return EndpointDetail{}, err
	}
	table := -1
	for i, l := range body {
		if strings.HasPrefix(strings.TrimSpace(l), "ParameterName") {
			table = i
			break
		}
	}
	if table < 0 {
		return EndpointDetail{}, unexpected(op, "no ParameterName table", "")
	}
	eps, err := parseEndpointBlocks(op, body[:table])
	if err != nil {
		return EndpointDetail{}, err
	}
	if len(eps) != 1 {
		return EndpointDetail{}, unexpected(op, fmt.Sprintf("%d endpoint blocks, want 1", len(eps)), "")
	}
	params, err := parseParamTable(op, body[table+1:])
	if err != nil {
		return EndpointDetail{}, err
	}
	return EndpointDetail{Endpoint: eps[0], Params: params}, nil
}

// parseParamTable reads " name : value" lines after the ParameterName header,
// skipping its line of '='.
func parseParamTable(op string, lines []string) (map[string]string, error) {
	params := map[string]string{}
	for _, l := range lines {
		if strings.TrimSpace(l) == "" || isRule(l) {
			continue
		}
		// Names never hold ':' or spaces; values may ("prefer:pending, ...").
		key, val, ok := strings.Cut(l, ":")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return nil, unexpected(op, "parameter line", l)
		}
		if _, dup := params[key]; !dup {
			params[key] = strings.TrimSpace(val)
		}
	}
	if len(params) == 0 {
		return nil, unexpected(op, "empty ParameterName table", "")
	}
	return params, nil
}
