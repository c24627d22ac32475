package accesslog

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// seedLine is the access-log line quoted in seed 000: a request the ALB sent
// to the draining target 10.0.2.61:1325 after its pod had exited (504, no
// target status, all three processing times -1).
const seedLine = `h2 2023-01-07T09:22:52.872365Z app/k8s-apidev-95472999b0/xxxxxxxxxx 202.102.17.226:24502 10.0.2.61:1325 -1 -1 -1 504 - 49 202 "GET https://example-api.cn:443/prefix-jiameng-api/ HTTP/2.0" "curl/7.79.1" ECDHE-RSA-XXXX-GCM-SHA256 TLSv1.2 arn:aws-cn:elasticloadbalancing:cn-northwest-1:xxxxxxx:targetgroup/k8s-dev-jiamenga-edb70a94b9/081fxxxxxxxx "Root=1-63b939e2-312611fa7a64f07e63d24099" "exxample-api.cn" "arn:aws-cn:acm:cn-northwest-1:xxxxxxx:certificate/e38c0d37-5c2f-4988-81c0-xxxxxxxx" 1 2023-01-07T09:22:42.870000Z "forward" "-" "-" "10.0.2.61:1325" "-" "-" "-"`

func TestParseSeedLine(t *testing.T) {
	e, err := Parse([]byte(seedLine + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	str := func(name string, got []byte, want string) {
		t.Helper()
		if string(got) != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
		if want == "" && got != nil {
			t.Errorf("%s = %q, want nil for -", name, got)
		}
	}
	// Every string field, in log order ("" is a "-" in the log: nil).
	for _, f := range []struct {
		name string
		got  []byte
		want string
	}{
		{"type", e.Type, "h2"},
		{"elb", e.ELB, "app/k8s-apidev-95472999b0/xxxxxxxxxx"},
		{"client", e.Client, "202.102.17.226:24502"},
		{"target", e.Target, "10.0.2.61:1325"},
		{"request", e.Request, "GET https://example-api.cn:443/prefix-jiameng-api/ HTTP/2.0"},
		{"user_agent", e.UserAgent, "curl/7.79.1"},
		{"ssl_cipher", e.SSLCipher, "ECDHE-RSA-XXXX-GCM-SHA256"},
		{"ssl_protocol", e.SSLProtocol, "TLSv1.2"},
		{"target_group_arn", e.TargetGroupARN, "arn:aws-cn:elasticloadbalancing:cn-northwest-1:xxxxxxx:targetgroup/k8s-dev-jiamenga-edb70a94b9/081fxxxxxxxx"},
		{"trace_id", e.TraceID, "Root=1-63b939e2-312611fa7a64f07e63d24099"},
		{"domain_name", e.DomainName, "exxample-api.cn"},
		{"chosen_cert_arn", e.ChosenCertARN, "arn:aws-cn:acm:cn-northwest-1:xxxxxxx:certificate/e38c0d37-5c2f-4988-81c0-xxxxxxxx"},
		{"actions_executed", e.ActionsExecuted, "forward"},
		{"redirect_url", e.RedirectURL, ""},
		{"error_reason", e.ErrorReason, ""},
		{"target:port_list", e.TargetPortList, "10.0.2.61:1325"},
		{"target_status_code_list", e.TargetStatusCodeList, ""},
		{"classification", e.Classification, ""},
		{"classification_reason", e.ClassificationReason, ""},
		{"conn_trace_id", e.ConnTraceID, ""},
	} {
		str(f.name, f.got, f.want)
	}
	if want := time.Date(2023, 1, 7, 9, 22, 52, 872365000, time.UTC); !e.Time.Equal(want) {
		t.Errorf("time = %v, want %v", e.Time, want)
	}
	for name, d := range map[string]time.Duration{"request": e.RequestProcessingTime,
		"target": e.TargetProcessingTime, "response": e.ResponseProcessingTime} {
		if d >= 0 {
			t.Errorf("%s_processing_time = %v, want negative (-1 in the log)", name, d)
		}
	}
	if e.ELBStatusCode != 504 || e.TargetStatusCode != 0 {
		t.Errorf("status elb=%d target=%d, want 504 and 0 (-)", e.ELBStatusCode, e.TargetStatusCode)
	}
	if e.ReceivedBytes != 49 || e.SentBytes != 202 {
		t.Errorf("bytes = %d/%d, want 49/202", e.ReceivedBytes, e.SentBytes)
	}
	if e.MatchedRulePriority != 1 {
		t.Errorf("matched_rule_priority = %d, want 1", e.MatchedRulePriority)
	}
	if want := time.Date(2023, 1, 7, 9, 22, 42, 870000000, time.UTC); !e.RequestCreationTime.Equal(want) {
		t.Errorf("request_creation_time = %v, want %v", e.RequestCreationTime, want)
	}
	if e.layout.fields != FieldClassificationReason+1 {
		t.Errorf("fields = %d, want %d", e.layout.fields, FieldClassificationReason+1)
	}
	if got := e.String(); got != seedLine {
		t.Errorf("round trip:\n got %s\nwant %s", got, seedLine)
	}
}

// realLines are real-format lines: the AWS documentation's examples (HTTP,
// HTTPS, HTTP/2 redirect, WebSockets, Lambda success and failure), the
// current full format with conn_trace_id and the transform fields, and
// every -1 / - case the docs describe.
var realLines = []string{
	// AWS doc examples (2018 format, through error_reason).
	`http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-"`,
	`https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 "GET https://www.example.com:443/ HTTP/1.1" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337281-1d84f3d73c47ec4e58577259" "www.example.com" "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012" 1 2018-07-02T22:22:48.364000Z "authenticate,forward" "-" "-"`,
	`h2 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 10.0.1.252:48160 10.0.0.66:9000 0.000 0.002 0.000 200 200 5 257 "GET https://10.0.2.105:773/ HTTP/2.0" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337327-72bd00b0343d75b906739c42" "-" "-" 1 2018-07-02T22:22:48.364000Z "redirect" "https://example.com:80/" "-"`,
	`ws 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 10.0.0.140:40914 10.0.1.192:8010 0.001 0.003 0.000 101 101 218 587 "GET http://10.0.0.30:80/ HTTP/1.1" "-" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337364-23a8c76965a2ef7629b185e3" "-" "-" 1 2018-07-02T22:22:48.364000Z "forward" "-" "-"`,
	`http 2018-11-30T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 - 0.000 0.001 0.000 502 - 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337364-23a8c76965a2ef7629b185e3" "-" "-" 0 2018-11-30T22:22:48.364000Z "forward" "-" "LambdaInvalidResponse"`,
	// Current format, every field, a 502 from a target that reset the connection.
	`https 2024-03-01T10:00:01.123456Z app/my-lb/50dc6c495c0c9188 192.0.2.10:51234 10.0.1.7:8080 0.001 -1 -1 502 - 310 277 "POST https://api.example.com:443/v1/orders?x=1 HTTP/1.1" "Mozilla/5.0 (X11; Linux x86_64) \"quoted\" agent" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.3 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/tg/73e2d6bc24d8a067 "Root=1-65e1a6b1-0123456789abcdef01234567" "api.example.com" "session-reused" 10 2024-03-01T10:00:01.120000Z "waf,forward" "-" "-" "10.0.1.7:8080" "-" "Acceptable" "-" TID_1234abcd5678ef90 "api.internal" "/v2/orders" "TransformSuccess"`,
	// No target registered: 503, nothing dispatched, rule evaluation error (-1).
	`http 2024-03-01T10:00:02.000001Z app/my-lb/50dc6c495c0c9188 192.0.2.10:51235 - -1 -1 -1 503 - 120 0 "GET http://api.example.com:80/ HTTP/1.1" "-" - - - "Root=1-65e1a6b2-0123456789abcdef01234567" "-" "-" -1 2024-03-01T10:00:02.000000Z "-" "-" "-" "-" "-" "-" "-" - "-" "-" "-"`,
	// Malformed request: matched_rule_priority "-", nothing dispatched, desync classification.
	`http 2024-03-01T10:00:03.000000Z app/my-lb/50dc6c495c0c9188 192.0.2.11:40000 - -1 -1 -1 400 - 0 0 "- http://api.example.com:80- -" "-" - - - "-" "-" "-" - - "-" "-" "-" "-" "-" "Severe" "AmbiguousUri" - "-" "-" "-"`,
	// Retried across two targets (target lists), and unknown trailing fields.
	`h2 2024-03-01T10:00:04.500000Z app/my-lb/50dc6c495c0c9188 192.0.2.12:40001 10.0.1.8:8080 0.000 2.501 0.000 200 200 80 900 "GET https://api.example.com:443/slow HTTP/2.0" "curl/8.5.0" TLS_AES_128_GCM_SHA256 TLSv1.3 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/tg/73e2d6bc24d8a067 "Self=1-65e1a6b4-aa;Root=1-65e1a6b4-0123456789abcdef01234567" "api.example.com" "arn:aws:acm:us-east-2:123456789012:certificate/1" 0 2024-03-01T10:00:02.000000Z "forward" "-" "-" "10.0.1.7:8080 10.0.1.8:8080" "502 200" "-" "-" TID_ab "-" "-" "-" future1 "future two"`,
	// Classic-ELB-style extra precision and an empty quoted user agent survive the round trip.
	`http 2024-03-01T10:00:05.1Z app/my-lb/50dc6c495c0c9188 192.0.2.13:40002 10.0.1.9:8080 0.000803 0.048702 1 200 200 1 2 "GET http://a:80/ HTTP/1.1" "" - - arn:x "Root=1-65e1a6b5-0123456789abcdef01234567" "-" "-" 0 2024-03-01T10:00:05Z "forward" "-" "-"`,
}

func TestRoundTripRealLines(t *testing.T) {
	for i, line := range realLines {
		e, err := Parse([]byte(line))
		if err != nil {
			t.Errorf("line %d: %v", i, err)
			continue
		}
		if got := e.String(); got != line {
			t.Errorf("line %d round trip:\n got %s\nwant %s", i, got, line)
		}
		c := e.Clone()
		if got := c.String(); got != line {
			t.Errorf("line %d clone round trip:\n got %s\nwant %s", i, got, line)
		}
	}
}

func TestDashAndMinusOneCases(t *testing.T) {
	e, err := Parse([]byte(realLines[6]))
	if err != nil {
		t.Fatal(err)
	}
	if e.Dispatched() || e.Target != nil {
		t.Errorf("target %q: want nil for -", e.Target)
	}
	if e.MatchedRulePriority != RuleError {
		t.Errorf("matched_rule_priority = %d, want RuleError", e.MatchedRulePriority)
	}
	if e.TargetGroupARN != nil || e.UserAgent != nil || e.ActionsExecuted != nil {
		t.Errorf("dash text fields not nil: %q %q %q", e.TargetGroupARN, e.UserAgent, e.ActionsExecuted)
	}
	if e.ELBStatusCode != 503 || e.TargetStatusCode != 0 || e.SentBytes != 0 {
		t.Errorf("status/bytes: %d %d %d", e.ELBStatusCode, e.TargetStatusCode, e.SentBytes)
	}

	e, err = Parse([]byte(realLines[7]))
	if err != nil {
		t.Fatal(err)
	}
	if e.MatchedRulePriority != RuleDash || !e.RequestCreationTime.IsZero() || e.TraceID != nil {
		t.Errorf("rule=%d creation=%v trace=%q: want RuleDash, zero time, nil", e.MatchedRulePriority, e.RequestCreationTime, e.TraceID)
	}
	if string(e.Classification) != "Severe" || string(e.ClassificationReason) != "AmbiguousUri" {
		t.Errorf("classification %q %q", e.Classification, e.ClassificationReason)
	}

	e, err = Parse([]byte(realLines[5]))
	if err != nil {
		t.Fatal(err)
	}
	if e.RequestProcessingTime != time.Millisecond || e.TargetProcessingTime >= 0 {
		t.Errorf("processing times %v %v: want 1ms and negative", e.RequestProcessingTime, e.TargetProcessingTime)
	}
	if string(e.ConnTraceID) != "TID_1234abcd5678ef90" || string(e.TransformedURI) != "/v2/orders" ||
		string(e.RequestTransformStatus) != "TransformSuccess" {
		t.Errorf("new fields: %q %q %q", e.ConnTraceID, e.TransformedURI, e.RequestTransformStatus)
	}
	if want := `Mozilla/5.0 (X11; Linux x86_64) \"quoted\" agent`; string(e.UserAgent) != want {
		t.Errorf("user agent %q, want %q", e.UserAgent, want)
	}

	e, err = Parse([]byte(realLines[8]))
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Extra) != `future1 "future two"` || string(e.TargetStatusCodeList) != "502 200" {
		t.Errorf("extra %q, status list %q", e.Extra, e.TargetStatusCodeList)
	}
	if e.TargetProcessingTime != 2501*time.Millisecond {
		t.Errorf("target time %v", e.TargetProcessingTime)
	}
}

// A hand-built Entry comes out in the full current format and parses back equal.
func TestAppendBuiltEntry(t *testing.T) {
	e := Entry{
		Type: []byte("http"), Time: time.Date(2024, 2, 29, 23, 59, 59, 999999000, time.UTC),
		ELB: []byte("app/lab/1"), Client: []byte("127.0.0.1:40000"), Target: []byte("127.0.1.2:1325"),
		RequestProcessingTime: 0, TargetProcessingTime: 12 * time.Millisecond, ResponseProcessingTime: NoTime,
		ELBStatusCode: 200, TargetStatusCode: 200, ReceivedBytes: 80, SentBytes: 120,
		Request: []byte("GET http://127.0.0.1:8080/ HTTP/1.1"), UserAgent: []byte("rollsafe"),
		TraceID: []byte("Root=1-65e1a6b1-0123456789abcdef01234567"), MatchedRulePriority: 0,
		RequestCreationTime: time.Date(2024, 2, 29, 23, 59, 59, 987000000, time.UTC),
		ActionsExecuted:     []byte("forward"), TargetPortList: []byte("127.0.1.2:1325"), TargetStatusCodeList: []byte("200"),
	}
	line := e.String()
	want := `http 2024-02-29T23:59:59.999999Z app/lab/1 127.0.0.1:40000 127.0.1.2:1325 0.000 0.012 -1 200 200 80 120 "GET http://127.0.0.1:8080/ HTTP/1.1" "rollsafe" - - - "Root=1-65e1a6b1-0123456789abcdef01234567" "-" "-" 0 2024-02-29T23:59:59.987000Z "forward" "-" "-" "127.0.1.2:1325" "200" "-" "-" - "-" "-" "-"`
	if line != want {
		t.Fatalf("Append:\n got %s\nwant %s", line, want)
	}
	back, err := Parse([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if back.String() != line || back.layout != (layout{}) {
		t.Errorf("parsed back: %s layout %+v", back.String(), back.layout)
	}
}

func TestParseErrors(t *testing.T) {
	full := realLines[5]
	cases := []struct {
		name, line, want string
	}{
		{"empty", "", "empty line"},
		{"truncated at a field", full[:strings.Index(full, ` "-" "-" "10.0.1.7`)], "truncated line: 23 fields"},
		{"truncated in a quote", full[:200], "missing closing quote"},
		{"missing closing quote", strings.Replace(full, `HTTP/1.1" "Mozilla`, `HTTP/1.1 "Mozilla`, 1), "user_agent"},
		{"missing opening quote", strings.Replace(full, `"POST https`, `POST https`, 1), "(request)"},
		{"bad status", strings.Replace(full, " 502 - ", " 5x2 - ", 1), "(elb_status_code)"},
		{"bad duration", strings.Replace(full, " 0.001 -1 -1 ", " 0.001 -2 -1 ", 1), "(target_processing_time)"},
		{"bad time", strings.Replace(full, "2024-03-01T10:00:01.123456Z", "2024-02-30T10:00:01.123456Z", 1), "(time)"},
		{"bad bytes", strings.Replace(full, " 310 277 ", " 310 -5 ", 1), "(sent_bytes)"},
		{"double space", strings.Replace(full, " 310 277 ", " 310  277 ", 1), "two spaces"},
		{"bad rule", strings.Replace(full, " 10 2024", " x 2024", 1), "(matched_rule_priority)"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.line))
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%s: err = %v, want a *ParseError", c.name, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %q, want it to mention %q", c.name, err, c.want)
		}
	}
}

func TestParseAllocatesNothing(t *testing.T) {
	line := []byte(realLines[5])
	var e Entry
	allocs := testing.AllocsPerRun(100, func() {
		if err := e.Parse(line); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Parse allocates %.1f times per line, want 0", allocs)
	}
	buf := make([]byte, 0, 1024)
	allocs = testing.AllocsPerRun(100, func() { buf = e.Append(buf[:0]) })
	if allocs != 0 {
		t.Errorf("Append allocates %.1f times per line, want 0", allocs)
	}
}
