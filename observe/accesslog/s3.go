package accesslog

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Config says how to reach S3. The zero value uses the standard AWS
// credential and region chain (environment, shared config, SSO, IMDS).
type S3Config struct {
	// Endpoint overrides the S3 endpoint (path-style addressing is then
	// used), e.g. a MinIO or a local stand-in.
	Endpoint string
	// Region overrides the chain's region. With none at all, us-east-1.
	Region string
}

// S3 lists and opens access-log objects.
type S3 struct {
	client *s3.Client
}

// NewS3 builds an S3 reader from the standard chain and cfg.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	var loadOpts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = true
		}
		// Log objects carry no checksum we could check against; don't warn.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return &S3{client: client}, nil
}

// splitS3URL splits s3://bucket/prefix.
func splitS3URL(u string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q is not an s3:// URL", u)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%q has no bucket", u)
	}
	return bucket, prefix, nil
}

// list returns one source per object under the URL's prefix, in key order.
func (c *S3) list(ctx context.Context, u string) ([]source, error) {
	bucket, prefix, err := splitS3URL(u)
	if err != nil {
		return nil, &InputError{Input: u, Err: err}
	}
	var out []source
	p := s3.NewListObjectsV2Paginator(c.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(bucket), Prefix: aws.String(prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, &InputError{Input: u, Err: err}
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if strings.HasSuffix(key, "/") {
				continue // a "folder" marker, not a log
			}
			out = append(out, source{
				name: "s3://" + bucket + "/" + key,
				open: func(ctx context.Context) (io.ReadCloser, error) {
					obj, err := c.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
					if err != nil {
						return nil, err
					}
					return obj.Body, nil
				},
			})
		}
	}
	if len(out) == 0 {
		return nil, &InputError{Input: u, Err: fmt.Errorf("no objects under this prefix")}
	}
	return out, nil
}
