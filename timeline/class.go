package timeline

// Class is the stable name of a request outcome. The names are part of
// rollsafe's output contract (JSON, NDJSON, metrics labels): never rename one.
type Class string

const (
	ClassOK          Class = "ok"
	ClassHTTP500     Class = "http_500"
	ClassHTTP502     Class = "http_502"
	ClassHTTP503     Class = "http_503"
	ClassHTTP504     Class = "http_504"
	ClassHTTP5xx     Class = "http_5xx" // any other 5xx
	ClassHTTP4xx     Class = "http_4xx"
	ClassConnRefused Class = "conn_refused"
	ClassConnReset   Class = "conn_reset"
	ClassEOF         Class = "eof"
	ClassTimeout     Class = "timeout"
	ClassTLS         Class = "tls"
	ClassDNS         Class = "dns"
	ClassOther       Class = "other"
)

// FailureClasses lists every failure class in the order reports print them.
var FailureClasses = []Class{
	ClassHTTP500, ClassHTTP502, ClassHTTP503, ClassHTTP504, ClassHTTP5xx, ClassHTTP4xx,
	ClassConnRefused, ClassConnReset, ClassEOF, ClassTimeout, ClassTLS, ClassDNS, ClassOther,
}

// ClassOfStatus maps an HTTP status code to its class. 1xx-3xx count as ok:
// the prober judges availability, not application semantics.
func ClassOfStatus(code int) Class {
	switch {
	case code == 500:
		return ClassHTTP500
	case code == 502:
		return ClassHTTP502
	case code == 503:
		return ClassHTTP503
	case code == 504:
		return ClassHTTP504
	case code >= 500:
		return ClassHTTP5xx
	case code >= 400:
		return ClassHTTP4xx
	default:
		return ClassOK
	}
}
