package s3

import (
	"errors"
	"fmt"
	"net/http"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/pitr-dev/pitr/store"
)

// translate maps an SDK error to the store's sentinel errors, keeping the
// original for its message. Errors it cannot classify (network failures,
// throttling that outlasted the SDK's retries, context ends) come back as
// they are.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if sentinel := classify(err); sentinel != nil {
		return fmt.Errorf("%w: %w", sentinel, err)
	}
	return err
}

func classify(err error) error {
	// MinIO names the error in a header even on bodiless HEAD responses.
	var resp *smithyhttp.ResponseError
	if errors.As(err, &resp) && resp.Response != nil {
		if s := byCode(resp.Response.Header.Get("X-Minio-Error-Code")); s != nil {
			return s
		}
	}
	var (
		noSuchKey    *types.NoSuchKey
		notFound     *types.NotFound
		noSuchBucket *types.NoSuchBucket
		signing      *v4.SigningError
		api          smithy.APIError
	)
	switch {
	case errors.As(err, &noSuchKey), errors.As(err, &notFound):
		return store.ErrNotFound
	case errors.As(err, &noSuchBucket):
		return store.ErrBucketNotFound
	case errors.As(err, &signing):
		return store.ErrBadCredentials // no usable credentials to sign with
	}
	if errors.As(err, &api) {
		if s := byCode(api.ErrorCode()); s != nil {
			return s
		}
	}
	if resp != nil {
		switch resp.HTTPStatusCode() {
		case http.StatusNotFound:
			return store.ErrNotFound
		case http.StatusForbidden:
			return store.ErrAccessDenied
		case http.StatusPreconditionFailed:
			return store.ErrPreconditionFailed
		case http.StatusRequestedRangeNotSatisfiable:
			return store.ErrInvalidRange
		}
	}
	return nil
}

// byCode maps an S3 error code to a sentinel error, or nil.
func byCode(code string) error {
	switch code {
	case "NoSuchKey", "NotFound":
		return store.ErrNotFound
	case "NoSuchBucket":
		return store.ErrBucketNotFound
	case "AccessDenied", "AllAccessDisabled", "AccountProblem":
		return store.ErrAccessDenied
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
		"TokenRefreshRequired", "InvalidSecurity":
		return store.ErrBadCredentials
	case "PreconditionFailed":
		return store.ErrPreconditionFailed
	case "InvalidRange":
		return store.ErrInvalidRange
	}
	return nil
}
