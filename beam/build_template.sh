#!/usr/bin/env bash
# Build the pipeline's Dataflow flex template: `make template`.
#
#   1. Cloud Build builds beam/Dockerfile (context: the repository root, filtered by
#      .dockerignore) and pushes the image to Artifact Registry:
#        REGION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE_NAME:TAG
#   2. `gcloud dataflow flex-template build` writes the template spec to TEMPLATE_PATH
#      (a gs:// JSON file) that points at that image and carries beam/metadata.json.
#
# Nothing is built on this machine: no Docker engine is needed, only an authenticated gcloud
# with the Cloud Build Editor, Artifact Registry Writer and Storage roles.
#
# The same image is the workers' SDK container: every launch passes it as sdk_container_image
# (API: launchParameter.environment.sdkContainerImage; gcloud: --parameters
# sdk_container_image=IMAGE). The script prints both values at the end.
set -euo pipefail

usage() {
    cat >&2 <<'EOF'
usage: beam/build_template.sh [--project P] [--region R] [--repository A]
                              [--template-path gs://BUCKET/PATH.json]
                              [--image-name N] [--tag T] [--print-only]
Each value may come from the environment instead: PROJECT, REGION, REPOSITORY, TEMPLATE_PATH,
IMAGE_NAME (default sluice-pipeline), TAG (default: UTC time and git commit).
--print-only builds nothing and prints the template spec the build would write.
EOF
}

fail() {
    echo "build_template.sh: $*" >&2
    exit 2
}

print_only=false
while [[ $# -gt 0 ]]; do
    flag="$1"
    case "$flag" in
        --print-only) print_only=true; shift; continue ;;
        -h | --help) usage; exit 0 ;;
        --project | --region | --repository | --template-path | --image-name | --tag) ;;
        *) usage; fail "expected one of the flags above, found '$flag'" ;;
    esac
    [[ $# -ge 2 ]] || fail "$flag: expected a value, found none"
    name="${flag#--}"
    name="${name//-/_}"
    printf -v "${name^^}" '%s' "$2"
    shift 2
done

for name in PROJECT REGION REPOSITORY TEMPLATE_PATH; do
    if [[ -z "${!name-}" ]]; then
        flag="--${name,,}"
        fail "expected $name (environment variable or ${flag//_/-}), found none"
    fi
done
if [[ ! "$TEMPLATE_PATH" =~ ^gs://[a-z0-9][-_.a-z0-9]*/.+\.json$ ]]; then
    fail "TEMPLATE_PATH: expected gs://BUCKET/PATH.json, found '$TEMPLATE_PATH'"
fi

IMAGE_NAME="${IMAGE_NAME:-sluice-pipeline}"
if [[ -z "${TAG-}" ]]; then
    # A new tag per build: a template spec keeps pointing at the exact image it was built with.
    TAG="$(date -u +%Y%m%d-%H%M%S)"
    if commit="$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --short=12 HEAD 2>/dev/null)"
    then
        TAG="$TAG-$commit"
    fi
fi
if [[ ! "$TAG" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
    fail "TAG: expected a Docker tag ([A-Za-z0-9_.-], at most 128 characters), found '$TAG'"
fi
image="$REGION-docker.pkg.dev/$PROJECT/$REPOSITORY/$IMAGE_NAME:$TAG"

command -v gcloud >/dev/null || fail "expected the gcloud CLI on PATH, found none"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

spec_command=(
    gcloud dataflow flex-template build "$TEMPLATE_PATH"
    --project="$PROJECT"
    --image="$image"
    --sdk-language=PYTHON
    --metadata-file=beam/metadata.json
)

if [[ "$print_only" == true ]]; then
    "${spec_command[@]}" --print-only --format='value(.)'
    exit 0
fi

# `gcloud builds submit --tag` wants the Dockerfile at the context root; ours lives in beam/
# with the repository root as context, so a one-step build config names it.
workdir="$(mktemp -d "${TMPDIR:-/tmp}/sluice-template.XXXXXX")"
trap 'rm -rf "$workdir"' EXIT
config="$workdir/cloudbuild.yaml"
cat >"$config" <<'YAML'
steps:
  - name: gcr.io/cloud-builders/docker
    args: ["build", "--file=beam/Dockerfile", "--build-arg=WORKER_IMAGE=${_IMAGE}", "--tag=${_IMAGE}", "."]
images: ["${_IMAGE}"]
YAML

echo "build_template.sh: building $image with Cloud Build" >&2
gcloud builds submit . \
    --project="$PROJECT" \
    --config="$config" \
    --ignore-file=.dockerignore \
    --substitutions="_IMAGE=$image"

echo "build_template.sh: writing the template spec $TEMPLATE_PATH" >&2
"${spec_command[@]}"

cat <<EOF
template spec: $TEMPLATE_PATH
image:         $image
The on_upload function needs SLUICE_DATAFLOW_TEMPLATE=$TEMPLATE_PATH, and every launch needs
sdk_container_image=$image (the workers run the same image).
EOF
