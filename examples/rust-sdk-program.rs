//! A program on the AWS SDK for Rust that `api-call-recorder run` can record. The Rust SDK reads
//! neither `HTTPS_PROXY` nor a CA bundle variable on its own, so a program meant to be recorded
//! builds its HTTP client with both, as here: the proxy from the environment and the roots of the
//! system plus the bundle `AWS_CA_BUNDLE` names.
//!
//! ```sh
//! cargo build --example rust-sdk-program
//! npx api-call-recorder run -- target/debug/examples/rust-sdk-program STREAM BUCKET_ARN
//! ```
//!
//! It creates a Firehose delivery stream into the bucket, puts a record, describes and deletes it.

use aws_config::BehaviorVersion;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::{CompressionFormat, ExtendedS3DestinationConfiguration, Record};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, Connector};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(stream), Some(bucket_arn)) = (args.next(), args.next()) else {
        return Err("usage: rust-sdk-program STREAM BUCKET_ARN".into());
    };
    let mut trust = TrustStore::default();
    if let Ok(bundle) = std::env::var("AWS_CA_BUNDLE") {
        trust = trust.with_pem_certificate(std::fs::read(bundle)?);
    }
    let tls_context = TlsContext::builder().with_trust_store(trust).build()?;
    let http_client = Builder::new().build_with_connector_fn(move |settings, _components| {
        let mut connector = Connector::builder()
            .proxy_config(ProxyConfig::from_env())
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(tls_context.clone());
        if let Some(settings) = settings {
            connector = connector.connector_settings(settings.clone());
        }
        connector.build()
    });
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .load()
        .await;
    let firehose = aws_sdk_firehose::Client::new(&config);
    let destination = ExtendedS3DestinationConfiguration::builder()
        .bucket_arn(bucket_arn)
        .role_arn("arn:aws:iam::123456789012:role/firehose-delivery")
        .compression_format(CompressionFormat::Gzip)
        .build()?;
    firehose
        .create_delivery_stream()
        .delivery_stream_name(&stream)
        .extended_s3_destination_configuration(destination)
        .send()
        .await?;
    let record = Record::builder()
        .data(Blob::new("recorded from Rust\n"))
        .build()?;
    firehose
        .put_record()
        .delivery_stream_name(&stream)
        .record(record)
        .send()
        .await?;
    let described = firehose
        .describe_delivery_stream()
        .delivery_stream_name(&stream)
        .send()
        .await?;
    println!(
        "{}",
        described
            .delivery_stream_description()
            .map(|d| d.delivery_stream_arn())
            .unwrap_or_default()
    );
    firehose
        .delete_delivery_stream()
        .delivery_stream_name(&stream)
        .send()
        .await?;
    Ok(())
}
