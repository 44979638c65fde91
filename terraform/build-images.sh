#!/usr/bin/env bash
# Builds and pushes every stage image named in jobs/definitions.json (from its Dockerfile) with
# Cloud Build, then prints the tags as the Terraform variable `images`:
#
#   DEPTH_MODEL_SHA256=… VOCAB_TREE_SHA256=… \
#     terraform/build-images.sh PROJECT_ID [REGION] [NAME_PREFIX] > terraform/images.auto.tfvars
#
# DEPTH_MODEL_SHA256 and VOCAB_TREE_SHA256 pin the files that node-cuda (the depth model) and colmap (the
# vocabulary tree) download at build time: their Dockerfiles refuse to build without them.
# REGION and NAME_PREFIX are the Terraform variables of the same names: the Artifact Registry
# repository and the build service account are named after the prefix.
#
# Progress goes to stderr, the variable to stdout. DRY_RUN=1 prints the build commands instead of
# running them. Images are tagged with the current commit (plus "-dirty" for uncommitted changes).
set -euo pipefail

project="${1:?usage: build-images.sh PROJECT_ID [REGION] [NAME_PREFIX]}"
region="${2:-us-central1}"
prefix="${3:-splatflow}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

tag_suffix="$(git rev-parse --short=12 HEAD 2>/dev/null || echo untracked)"
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then tag_suffix="${tag_suffix}-dirty"; fi

# "name<TAB>dockerfile" per image; Node is a prerequisite of the project anyway.
images="$(node -e '
  const { images } = JSON.parse(require("fs").readFileSync("jobs/definitions.json", "utf8"));
  for (const [name, image] of Object.entries(images)) console.log(`${name}\t${image.dockerfile}`);
')"
if [ -z "$images" ]; then
  echo "build-images.sh: jobs/definitions.json names no images" >&2
  exit 1
fi

while IFS=$'\t' read -r name dockerfile; do
  if [ ! -f "$dockerfile" ]; then
    echo "build-images.sh: $dockerfile (image $name) does not exist" >&2
    exit 1
  fi
done <<<"$images"

# Checked before any build starts, so a missing pin does not surface an hour into the builds.
for arg in DEPTH_MODEL_SHA256 VOCAB_TREE_SHA256; do
  if [ -z "${!arg:-}" ]; then
    echo "build-images.sh: $arg is not set (the sha256 its Dockerfile in jobs/containers/ pins)" >&2
    exit 1
  fi
done

# Printed only once every image is pushed, so a failed build never leaves a partial variable.
variable="images = {"$'\n'
while IFS=$'\t' read -r name dockerfile; do
  tag="${region}-docker.pkg.dev/${project}/${prefix}/${name}:${tag_suffix}"
  command=(gcloud builds submit . --project "$project" --region "$region"
    --config terraform/cloudbuild.images.yaml --ignore-file terraform/images.gcloudignore
    --service-account "projects/${project}/serviceAccounts/${prefix}-build@${project}.iam.gserviceaccount.com"
    --substitutions "_DOCKERFILE=${dockerfile},_TAG=${tag},_DEPTH_MODEL_SHA256=${DEPTH_MODEL_SHA256},_VOCAB_TREE_SHA256=${VOCAB_TREE_SHA256}")
  if [ "${DRY_RUN:-0}" = 1 ]; then
    echo "${command[*]}" >&2
  else
    echo "building $name from $dockerfile as $tag" >&2
    "${command[@]}" </dev/null >&2
  fi
  variable+="  \"${name}\" = \"${tag}\""$'\n'
done <<<"$images"
printf '%s}\n' "$variable"
