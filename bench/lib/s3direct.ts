// The limit side of the S3 comparisons: @aws-sdk/client-s3 straight at the same server.
import { S3Client } from '@aws-sdk/client-s3';
import type { S3Server } from '../../test/harness/s3server.js';

export function directClient(s3: S3Server): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
  });
}
