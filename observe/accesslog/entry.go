// Package accesslog reads and writes AWS Application Load Balancer access
// logs: one Entry per line, every documented field in order, parsed without
// a per-field allocation (the byte slices of an Entry point into the line).
//
// Field semantics follow the AWS documentation ("Access logs for your
// Application Load Balancer", access-log-entry-syntax). Values the log
// writes as "-" or "-1" are kept distinct from real zeros:
//
//   - durations (the three *_processing_time fields): -1 in the log is
//     NoTime (any negative Duration); 0 is a real zero.
//   - status codes: "-" is 0 (no HTTP status is 0). target_status_code is
//     "-" when no connection to the target was made or it sent no response.
//   - byte counts: "-" is -1.
//   - matched_rule_priority: 0 is "default action", -1 is "error during rule
//     evaluation" (RuleError), "-" is RuleDash ("any other error").
//   - times: "-" is the zero time.Time.
//   - text fields: "-" is nil; Append writes "-" for an empty field.
package accesslog

import (
	"time"
)

// Field indexes, in the order the fields appear on a line. New fields are
// appended by AWS at the end of the line; unknown trailing fields are kept
// verbatim in Entry.Extra.
const (
	FieldType = iota
	FieldTime
	FieldELB
	FieldClient
	FieldTarget
	FieldRequestProcessingTime
	FieldTargetProcessingTime
	FieldResponseProcessingTime
	FieldELBStatusCode
	FieldTargetStatusCode
	FieldReceivedBytes
	FieldSentBytes
	FieldRequest
	FieldUserAgent
	FieldSSLCipher
	FieldSSLProtocol
	FieldTargetGroupARN
	FieldTraceID
	FieldDomainName
	FieldChosenCertARN
	FieldMatchedRulePriority
	FieldRequestCreationTime
	FieldActionsExecuted
	FieldRedirectURL
	FieldErrorReason
	FieldTargetPortList
	FieldTargetStatusCodeList
	FieldClassification
	FieldClassificationReason
	FieldConnTraceID
	FieldTransformedHost
	FieldTransformedURI
	FieldRequestTransformStatus

	// NumFields is how many fields this package knows.
	NumFields
)

// MinFields is the fewest fields a line may have: everything up to
// error_reason, the format ALB has written since 2018 (the AWS doc examples
// stop there). A line with fewer fields is reported as truncated rather than
// silently read as an older format.
const MinFields = FieldErrorReason + 1

// FieldNames are the documented names, used in error messages.
var FieldNames = [NumFields]string{
	"type", "time", "elb", "client:port", "target:port",
	"request_processing_time", "target_processing_time", "response_processing_time",
	"elb_status_code", "target_status_code", "received_bytes", "sent_bytes",
	"request", "user_agent", "ssl_cipher", "ssl_protocol", "target_group_arn",
	"trace_id", "domain_name", "chosen_cert_arn", "matched_rule_priority",
	"request_creation_time", "actions_executed", "redirect_url", "error_reason",
	"target:port_list", "target_status_code_list", "classification",
	"classification_reason", "conn_trace_id", "transformed_host",
	"transformed_uri", "request_transform_status",
}

// quotedFields has a bit set for every field AWS writes in double quotes.
const quotedFields uint64 = 1<<FieldRequest | 1<<FieldUserAgent | 1<<FieldTraceID |
	1<<FieldDomainName | 1<<FieldChosenCertARN | 1<<FieldActionsExecuted |
	1<<FieldRedirectURL | 1<<FieldErrorReason | 1<<FieldTargetPortList |
	1<<FieldTargetStatusCodeList | 1<<FieldClassification |
	1<<FieldClassificationReason | 1<<FieldTransformedHost |
	1<<FieldTransformedURI | 1<<FieldRequestTransformStatus

// flexibleQuoting marks the newest fields, whose quoting we accept either
// way: they are young enough that third-party writers disagree. Every other
// field must be quoted exactly as AWS documents it, which is what catches a
// line with a missing quote instead of silently shifting fields.
const flexibleQuoting uint64 = 1<<FieldConnTraceID | 1<<FieldTransformedHost |
	1<<FieldTransformedURI | 1<<FieldRequestTransformStatus

// Sentinels for values the log writes as "-" or "-1".
const (
	// NoTime is a processing time the log wrote as -1 (the load balancer
	// could not dispatch the request, or the target did not answer).
	// Any negative duration means the same.
	NoTime time.Duration = -1
	// RuleError is matched_rule_priority -1: an error during rule evaluation.
	RuleError = -1
	// RuleDash is matched_rule_priority "-": any other error.
	RuleDash = -2
)

// Entry is one access-log line. The []byte fields are views into the
// parsed line: they are valid until the line's buffer is reused. Call Clone
// to keep an Entry beyond that.
type Entry struct {
	Type   []byte    // http, https, h2, grpcs, ws, wss
	Time   time.Time // when the LB sent the response (UTC)
	ELB    []byte    // app/name/id
	Client []byte    // ip:port
	Target []byte    // ip:port; nil when "-" (request never dispatched)

	RequestProcessingTime  time.Duration // negative: -1 in the log
	TargetProcessingTime   time.Duration // negative: -1 in the log
	ResponseProcessingTime time.Duration // negative: -1 in the log

	ELBStatusCode    int   // 0: "-"
	TargetStatusCode int   // 0: "-" (no response from the target)
	ReceivedBytes    int64 // -1: "-"
	SentBytes        int64 // -1: "-"

	Request        []byte // "METHOD scheme://host:port/uri PROTO", without the quotes
	UserAgent      []byte
	SSLCipher      []byte
	SSLProtocol    []byte
	TargetGroupARN []byte
	TraceID        []byte // X-Amzn-Trace-Id as received, e.g. Root=1-...
	DomainName     []byte
	ChosenCertARN  []byte

	MatchedRulePriority int       // 0 default action, 1..50000 a rule, RuleError, RuleDash
	RequestCreationTime time.Time // when the LB received the request (UTC)

	ActionsExecuted        []byte // comma-separated: waf, forward, redirect, ...
	RedirectURL            []byte
	ErrorReason            []byte
	TargetPortList         []byte // space-separated ip:port list
	TargetStatusCodeList   []byte // space-separated status list
	Classification         []byte // desync mitigation: Acceptable, Ambiguous, Severe
	ClassificationReason   []byte
	ConnTraceID            []byte
	TransformedHost        []byte
	TransformedURI         []byte
	RequestTransformStatus []byte

	// Extra holds unknown trailing fields verbatim (without the leading space).
	Extra []byte

	layout layout
}

// layout remembers how a parsed line spelled what the Entry's values do not
// capture (field count, fraction digits, unusual quoting), so that Append
// reproduces the parsed line byte for byte. Its zero value is AWS's current
// canonical format, which is what Append writes for an Entry built by hand.
type layout struct {
	fields      uint8    // known fields present; 0 means all of them
	prec        [5]uint8 // fraction digits+1 of the 3 durations and 2 times; 0 means default
	quoteFlip   uint64   // bit i: field i quoted opposite to canonical
	emptyQuoted uint64   // bit i: field i was written "" rather than "-"
}

// Indexes into layout.prec.
const (
	precReq = iota
	precTarget
	precResp
	precTime
	precCreation
)

// Default fraction digits, as AWS writes them.
const (
	defaultDurationDigits = 3
	defaultTimeDigits     = 6
)

// Dispatched reports whether the load balancer sent the request to a target.
func (e *Entry) Dispatched() bool { return len(e.Target) > 0 }

// Clone returns a copy of e that owns its bytes (one allocation).
func (e *Entry) Clone() Entry {
	c := *e
	fields := c.bytesFields()
	n := 0
	for _, f := range fields {
		n += len(*f)
	}
	buf := make([]byte, 0, n)
	for _, f := range fields {
		if *f == nil {
			continue
		}
		start := len(buf)
		buf = append(buf, *f...)
		*f = buf[start:len(buf):len(buf)]
	}
	return c
}

// bytesFields lists pointers to every []byte field, for Clone.
func (e *Entry) bytesFields() [24]*[]byte {
	return [24]*[]byte{&e.Type, &e.ELB, &e.Client, &e.Target, &e.Request, &e.UserAgent,
		&e.SSLCipher, &e.SSLProtocol, &e.TargetGroupARN, &e.TraceID, &e.DomainName,
		&e.ChosenCertARN, &e.ActionsExecuted, &e.RedirectURL, &e.ErrorReason,
		&e.TargetPortList, &e.TargetStatusCodeList, &e.Classification,
		&e.ClassificationReason, &e.ConnTraceID, &e.TransformedHost, &e.TransformedURI,
		&e.RequestTransformStatus, &e.Extra}
}
