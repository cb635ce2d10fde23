"""An independent oracle for the session model: a simulated learner and what each platform sends.

`player` plays a video on a true wall clock and records what was really played (pure Python);
`reporters` turns that viewing into the requests each platform's tracker sends (golden-style)
and replays requests through the public Pipeline API. Nothing here reads the session model's
state or reuses its rules: the property tests compare its statements with this truth.
"""
