#version 330

uniform float u_time;
uniform vec2 u_resolution;

out vec4 fragColor;

void main()
{
    vec2 uv = gl_FragCoord.xy / u_resolution;
    float aspect = u_resolution.x / u_resolution.y;
    float sunY = 0.45 + 0.1 * sin(u_time * 0.4);
    vec3 sky = mix(vec3(1.0, 0.45, 0.2), vec3(0.2, 0.1, 0.45), uv.y);
    float sun = smoothstep(0.12, 0.11, length((uv - vec2(0.5, sunY)) * vec2(aspect, 1.0)));
    vec3 col = mix(sky, vec3(1.0, 0.85, 0.4), sun);
    // water below the horizon with moving ripples
    if (uv.y < 0.3)
    {
        float ripple = 0.5 + 0.5 * sin(uv.y * 120.0 - u_time * 3.0 + sin(uv.x * 20.0));
        col = mix(vec3(0.05, 0.1, 0.3), col, 0.4 * ripple);
    }
    fragColor = vec4(col, 1.0);
}
