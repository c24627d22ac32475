package accesslog

import (
	"bytes"
	"fmt"
	"time"

	"github.com/rollsafe/rollsafe/timeline/civil"
)

// ParseError says which field of a line could not be read and why.
type ParseError struct {
	Field int // index into FieldNames; -1 when the line as a whole is wrong
	Col   int // 1-based byte column where the field starts
	Msg   string
}

func (e *ParseError) Error() string {
	if e.Field < 0 {
		return e.Msg
	}
	return fmt.Sprintf("field %d (%s) at column %d: %s", e.Field+1, FieldNames[e.Field], e.Col, e.Msg)
}

// Parse reads one access-log line (a trailing newline and trailing
// whitespace are ignored). The Entry's byte slices point into line.
func Parse(line []byte) (Entry, error) {
	var e Entry
	err := e.Parse(line)
	return e, err
}

// Parse reads line into e, overwriting every field; it allocates nothing for
// a well-formed line, so a caller that reuses one Entry parses for free. On
// error e is left empty, never half filled.
func (e *Entry) Parse(line []byte) error {
	err := e.parse(line)
	if err != nil {
		*e = Entry{}
	}
	return err
}

func (e *Entry) parse(line []byte) error {
	*e = Entry{}
	line = bytes.TrimRight(line, " \t\r\n")
	if len(line) == 0 {
		return &ParseError{Field: -1, Msg: "empty line"}
	}
	i, fi := 0, 0
	for ; fi < NumFields && i < len(line); fi++ {
		val, quoted, next, msg := token(line, i)
		if msg == "" {
			msg = e.set(fi, val, quoted)
		}
		if msg != "" {
			return &ParseError{Field: fi, Col: i + 1, Msg: msg}
		}
		i = next + 1 // past the separating space (or past the end)
	}
	if fi < MinFields {
		return &ParseError{Field: -1, Msg: fmt.Sprintf("truncated line: %d fields, want at least %d (through error_reason)", fi, MinFields)}
	}
	if fi < NumFields {
		e.layout.fields = uint8(fi)
	}
	if i < len(line) {
		e.Extra = line[i:]
	}
	return nil
}

// token reads the field that starts at line[i]: quoted when it starts with
// a double quote. next is the index just past the field, which is either
// len(line) or a space. A quoted field ends at the first unescaped quote
// followed by a space or the end of the line, so a stray quote inside a
// user agent does not end it early.
func token(line []byte, i int) (val []byte, quoted bool, next int, msg string) {
	if line[i] != '"' {
		j := bytes.IndexByte(line[i:], ' ')
		if j < 0 {
			return line[i:], false, len(line), ""
		}
		if j == 0 {
			return nil, false, i, "empty field (two spaces)"
		}
		return line[i : i+j], false, i + j, ""
	}
	for p := i + 1; ; {
		k := bytes.IndexByte(line[p:], '"')
		if k < 0 {
			return nil, true, 0, "missing closing quote"
		}
		q := p + k
		if line[q-1] == '\\' && q-1 > i {
			p = q + 1
			continue
		}
		if q+1 == len(line) || line[q+1] == ' ' {
			return line[i+1 : q], true, q + 1, ""
		}
		p = q + 1
	}
}

// set stores the value of field fi, returning what is wrong with it.
func (e *Entry) set(fi int, v []byte, quoted bool) string {
	wantQuoted := quotedFields>>fi&1 == 1
	if quoted != wantQuoted {
		if flexibleQuoting>>fi&1 == 0 {
			if wantQuoted {
				return "want a double-quoted field"
			}
			return "unexpected double quote"
		}
		e.layout.quoteFlip |= 1 << fi
	}
	switch fi {
	case FieldTime:
		return e.setTime(&e.Time, precTime, v)
	case FieldRequestCreationTime:
		return e.setTime(&e.RequestCreationTime, precCreation, v)
	case FieldRequestProcessingTime:
		return e.setDuration(&e.RequestProcessingTime, precReq, v)
	case FieldTargetProcessingTime:
		return e.setDuration(&e.TargetProcessingTime, precTarget, v)
	case FieldResponseProcessingTime:
		return e.setDuration(&e.ResponseProcessingTime, precResp, v)
	case FieldELBStatusCode:
		return setStatus(&e.ELBStatusCode, v)
	case FieldTargetStatusCode:
		return setStatus(&e.TargetStatusCode, v)
	case FieldReceivedBytes:
		return setBytes(&e.ReceivedBytes, v)
	case FieldSentBytes:
		return setBytes(&e.SentBytes, v)
	case FieldMatchedRulePriority:
		if isDash(v) {
			e.MatchedRulePriority = RuleDash
			return ""
		}
		n, ok := atoi(v)
		if !ok || n < -1 || n > 1<<20 {
			return fmt.Sprintf("want a rule priority, -1 or -, got %q", v)
		}
		e.MatchedRulePriority = int(n)
		return ""
	}
	if quoted && len(v) == 0 {
		e.layout.emptyQuoted |= 1 << fi
	}
	if isDash(v) {
		v = nil
	}
	*e.textField(fi) = v
	return ""
}

// textField returns the []byte field with index fi (only text fields).
func (e *Entry) textField(fi int) *[]byte {
	switch fi {
	case FieldType:
		return &e.Type
	case FieldELB:
		return &e.ELB
	case FieldClient:
		return &e.Client
	case FieldTarget:
		return &e.Target
	case FieldRequest:
		return &e.Request
	case FieldUserAgent:
		return &e.UserAgent
	case FieldSSLCipher:
		return &e.SSLCipher
	case FieldSSLProtocol:
		return &e.SSLProtocol
	case FieldTargetGroupARN:
		return &e.TargetGroupARN
	case FieldTraceID:
		return &e.TraceID
	case FieldDomainName:
		return &e.DomainName
	case FieldChosenCertARN:
		return &e.ChosenCertARN
	case FieldActionsExecuted:
		return &e.ActionsExecuted
	case FieldRedirectURL:
		return &e.RedirectURL
	case FieldErrorReason:
		return &e.ErrorReason
	case FieldTargetPortList:
		return &e.TargetPortList
	case FieldTargetStatusCodeList:
		return &e.TargetStatusCodeList
	case FieldClassification:
		return &e.Classification
	case FieldClassificationReason:
		return &e.ClassificationReason
	case FieldConnTraceID:
		return &e.ConnTraceID
	case FieldTransformedHost:
		return &e.TransformedHost
	case FieldTransformedURI:
		return &e.TransformedURI
	case FieldRequestTransformStatus:
		return &e.RequestTransformStatus
	}
	panic(fmt.Sprintf("accesslog: field %d is not a text field", fi)) // programming error, not input
}

func isDash(v []byte) bool { return len(v) == 1 && v[0] == '-' }

func setStatus(dst *int, v []byte) string {
	if isDash(v) {
		*dst = 0
		return ""
	}
	n, ok := atoi(v)
	if !ok || n < 100 || n > 999 {
		return fmt.Sprintf("want an HTTP status or -, got %q", v)
	}
	*dst = int(n)
	return ""
}

func setBytes(dst *int64, v []byte) string {
	if isDash(v) {
		*dst = -1
		return ""
	}
	n, ok := atoi(v)
	if !ok || n < 0 {
		return fmt.Sprintf("want a byte count, got %q", v)
	}
	*dst = n
	return ""
}

// atoi parses an optionally negative decimal of at most 18 digits, in
// canonical form only (no leading zeros, no "-0"): what ALB writes, and what
// keeps Append(Parse(line)) == line for every line Parse accepts.
func atoi(v []byte) (int64, bool) {
	neg := len(v) > 0 && v[0] == '-'
	if neg {
		v = v[1:]
	}
	if len(v) == 0 || len(v) > 18 || (v[0] == '0' && (len(v) > 1 || neg)) {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// setDuration parses seconds with a decimal fraction ("0.001"), or -1.
func (e *Entry) setDuration(dst *time.Duration, pi int, v []byte) string {
	if len(v) == 2 && v[0] == '-' && v[1] == '1' {
		*dst = NoTime
		return ""
	}
	dot := bytes.IndexByte(v, '.')
	intPart, frac := v, []byte(nil)
	if dot >= 0 {
		intPart, frac = v[:dot], v[dot+1:]
	}
	sec, ok := atoi(intPart)
	if !ok || sec < 0 || len(intPart) > 9 || len(frac) > 9 || (dot >= 0 && len(frac) == 0) {
		return fmt.Sprintf("want seconds like 0.001 or -1, got %q", v)
	}
	ns, ok := fraction(frac)
	if !ok {
		return fmt.Sprintf("want seconds like 0.001 or -1, got %q", v)
	}
	*dst = time.Duration(sec)*time.Second + time.Duration(ns)
	e.setPrec(pi, dot, len(frac), defaultDurationDigits)
	return ""
}

// setPrec records fraction digits that differ from AWS's default.
// dot < 0 means there was no decimal point at all (stored as 0 digits).
func (e *Entry) setPrec(pi, dot, digits, def int) {
	if dot < 0 {
		digits = 0
	}
	if digits != def {
		e.layout.prec[pi] = uint8(digits + 1)
	}
}

// fraction turns up to 9 decimal digits after the point into nanoseconds.
func fraction(f []byte) (int64, bool) {
	var ns int64
	for _, c := range f {
		if c < '0' || c > '9' {
			return 0, false
		}
		ns = ns*10 + int64(c-'0')
	}
	for range 9 - len(f) {
		ns *= 10
	}
	return ns, true
}

// setTime parses the ISO 8601 UTC form ALB writes,
// 2006-01-02T15:04:05.000000Z, or "-". Hand-rolled: time.Parse costs more
// than the rest of the line.
func (e *Entry) setTime(dst *time.Time, pi int, v []byte) string {
	if isDash(v) {
		*dst = time.Time{}
		return ""
	}
	bad := func() string { return fmt.Sprintf("want a time like 2006-01-02T15:04:05.000000Z, got %q", v) }
	if len(v) < 20 || v[4] != '-' || v[7] != '-' || v[10] != 'T' || v[13] != ':' || v[16] != ':' || v[len(v)-1] != 'Z' {
		return bad()
	}
	y, ok1 := civil.Digits(v[0:4])
	mo, ok2 := civil.Digits(v[5:7])
	d, ok3 := civil.Digits(v[8:10])
	h, ok4 := civil.Digits(v[11:13])
	mi, ok5 := civil.Digits(v[14:16])
	s, ok6 := civil.Digits(v[17:19])
	// Years before 1970 are refused: year 1 would collide with the zero
	// time.Time, which stands for "-".
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || y < 1970 || mo < 1 || mo > 12 || d < 1 ||
		d > civil.DaysIn(mo, y) || h > 23 || mi > 59 || s > 59 {
		return bad()
	}
	rest := v[19 : len(v)-1]
	var ns int64
	dot := -1
	if len(rest) > 0 {
		if rest[0] != '.' || len(rest) == 1 || len(rest) > 10 {
			return bad()
		}
		dot = 0
		var ok bool
		if ns, ok = fraction(rest[1:]); !ok {
			return bad()
		}
	}
	*dst = time.Date(y, time.Month(mo), d, h, mi, s, int(ns), time.UTC)
	e.setPrec(pi, dot, max(len(rest)-1, 0), defaultTimeDigits)
	return ""
}
