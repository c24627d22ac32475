// Package attribution names the cause of every failed request of a rollout
// from evidence a user on AWS can collect, and measures how long the load
// balancer kept routing to each deregistered target (the propagation delay
// P that AWS does not publish).
//
// The evidence is what `rollsafe probe --kube --target-group-arn --record`
// and the ALB's access log hold:
//
//   - request records (Source probe): class, send time, latency, trace id,
//     the replica and version headers of an answer;
//   - pod records as the Kubernetes API shows them (Source kube, package
//     observe/kube): Terminating, Ready, container terminated with reason
//     and exit code, Deleted, each with the pod IP;
//   - target records polled from DescribeTargetHealth (Source elbv2, package
//     observe/elbv2): a change seen at one poll happened after the previous
//     poll (Attrs prev_poll), so every target time is a window, not an
//     instant;
//   - ALB access-log entries (package accesslog), joined to requests by the
//     X-Amzn-Trace-Id the prober sent: the target the ALB chose, its status,
//     the -1 processing times of a request the target never answered.
//
// Records with Source lab are the lab's ground truth and are never read as
// evidence. KindTruth records (the lab's cause per failed request) are only
// used to say how often the attribution agrees with the truth.
//
// Each failure gets a cause (timeline.Cause), the chain of evidence it rests
// on, and a confidence: Certain when no fact it uses lies inside an
// uncertainty window (between two polls, or an exit recorded just after the
// request), Likely when one does or when the target had to be guessed
// without an access log, and
// Unknown when the evidence does not say. What an extra source would settle
// is said with it.
//
// Clocks: pod and target records are stamped by the machine that watched
// (the probe host); access-log times are AWS's. The skew between them is
// estimated from joined requests (the median of request_creation_time minus
// the probe's send time) and taken out of every access-log time.
package attribution
